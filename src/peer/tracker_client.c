/* tracker_client.c — libcurl's multi-socket interface on the libuv loop:
 * curl tells us which sockets to watch and when to wake it (uv_poll_t and
 * uv_timer_t), the loop tells curl what happened, and finished transfers
 * become callbacks. With several tracker URLs, a request that fails on
 * one (no answer, or 502/503/504) is sent again to the next, and the one
 * that failed is left alone for a backoff that grows with its failures.
 * Also what a tracker URL may be: https:// verified by CA, by pin or
 * both, or plain http:// on loopback only (unless allowed). */
#include "hychat/tracker_client.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "hychat/log.h"
#include "hychat/util.h"

struct tc_request {
	struct tracker_client *tc;
	size_t base; /* the URL it went to */
	unsigned tries; /* URLs tried */
	enum tracker_method method;
	char *path;
	char *post; /* the body of a POST */
	long timeout_ms;
	CURL *easy;
	struct curl_slist *headers;
	struct buf body;
	int too_big;
	tracker_client_fn *done;
	void *arg;
	char errbuf[CURL_ERROR_SIZE];
	char err[TRACKER_CLIENT_ERROR_MAX];
	struct tc_request *prev, *next;
};

struct tc_socket {
	uv_poll_t poll;
	curl_socket_t fd;
	struct tracker_client *tc;
	struct tc_socket *prev, *next;
};

struct tracker_client {
	uv_loop_t *loop;
	CURLM *multi;
	uv_timer_t timer;
	char *bases[TRACKER_CLIENT_MAX_URLS];
	size_t nbases;
	uint64_t down_until[TRACKER_CLIENT_MAX_URLS]; /* backoff, in hy_now_ms() */
	unsigned fails[TRACKER_CLIENT_MAX_URLS];
	char *token;
	char *ca_file;
	char *pin;
	int tls, loopback; /* some tracker is https; all are loopback */
	unsigned char tls_of[TRACKER_CLIENT_MAX_URLS]; /* which are https */
	char tls_error[TRACKER_CLIENT_ERROR_MAX];
	long retry_after; /* the last answer's Retry-After, in seconds; 0 without */
	struct tc_request *reqs;
	struct tc_socket *socks;
	unsigned pending;
	unsigned open_handles; /* the timer and the polls not yet closed */
	int dispatching;
	int freeing;
	char local_ip[TRACKER_CLIENT_IP_MAX];
};

static void
maybe_release(struct tracker_client *tc)
{
	if (tc->freeing && tc->open_handles == 0) {
		for (size_t i = 0; i < tc->nbases; i++)
			free(tc->bases[i]);
		free(tc->token);
		free(tc->ca_file);
		free(tc->pin);
		free(tc);
		curl_global_cleanup();
	}
}

static void
handle_closed(uv_handle_t *h)
{
	struct tracker_client *tc;

	if (h->type == UV_POLL) {
		struct tc_socket *s = h->data;
		tc = s->tc;
		free(s);
	} else {
		tc = h->data;
	}
	tc->open_handles--;
	maybe_release(tc);
}

static void
sock_close(struct tc_socket *s)
{
	struct tracker_client *tc = s->tc;

	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		tc->socks = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	uv_poll_stop(&s->poll);
	uv_close((uv_handle_t *)&s->poll, handle_closed);
}

static void
req_unlink(struct tc_request *r)
{
	struct tracker_client *tc = r->tc;

	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		tc->reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	tc->pending--;
}

static void
req_free(struct tc_request *r)
{
	curl_multi_remove_handle(r->tc->multi, r->easy);
	curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->headers);
	buf_fini(&r->body);
	free(r->path);
	free(r->post);
	free(r);
}

/* The first URL, in the order given, out of its backoff; if all are in
 * one, the one whose backoff ends first. */
static size_t
base_pick(const struct tracker_client *tc)
{
	uint64_t now = hy_now_ms();
	size_t best = 0;

	for (size_t i = 0; i < tc->nbases; i++) {
		if (tc->down_until[i] <= now)
			return i;
		if (tc->down_until[i] < tc->down_until[best])
			best = i;
	}
	return best;
}

static void
base_failed(struct tracker_client *tc, size_t i)
{
	unsigned shift = tc->fails[i] < 16 ? tc->fails[i] : 16;
	uint64_t wait = (uint64_t)TRACKER_CLIENT_BACKOFF_MIN_MS << shift;

	tc->fails[i]++;
	tc->down_until[i] = hy_now_ms() +
	    (wait < TRACKER_CLIENT_BACKOFF_MAX_MS ? wait : TRACKER_CLIENT_BACKOFF_MAX_MS);
	if (tc->nbases > 1)
		log_warn("tracker %s: no answer; trying another", tc->bases[i]);
}

/* True if the answer says to ask another tracker: none came, or a proxy
 * or the tracker says it cannot serve now. */
static int
worth_failover(CURLcode result, long status, int too_big)
{
	if (result != CURLE_OK)
		return !too_big;
	return status == 502 || status == 503 || status == 504;
}

static int req_send(struct tc_request *r);

/* The failures of TLS, and whether each is the tracker's identity not
 * holding (verify): trying again will not make it hold. */
static const struct {
	CURLcode code;
	int verify;
	const char *what;
} tls_failures[] = {
	{ CURLE_PEER_FAILED_VERIFICATION, 1, "tracker certificate not trusted" },
	{ CURLE_SSL_PINNEDPUBKEYNOTMATCH, 1, "tracker public key does not match the pin" },
	{ CURLE_SSL_CACERT_BADFILE, 1, "tracker CA file unusable" },
	{ CURLE_SSL_CONNECT_ERROR, 0, "TLS handshake with the tracker failed" },
};

/* What went wrong, in r->err: the failure's name, libcurl's own words
 * (which name the certificate problem), and what was checked against. */
static const char *
describe_failure(struct tc_request *r, CURLcode result)
{
	struct tracker_client *tc = r->tc;
	const char *detail = r->errbuf[0] != '\0' ? r->errbuf : curl_easy_strerror(result);

	for (size_t i = 0; i < HY_ARRAY_LEN(tls_failures); i++) {
		if (tls_failures[i].code != result)
			continue;
		if (result == CURLE_SSL_PINNEDPUBKEYNOTMATCH)
			snprintf(r->err, sizeof(r->err), "%s %s (%s)", tls_failures[i].what,
			    tc->pin, detail);
		else if (result == CURLE_PEER_FAILED_VERIFICATION)
			snprintf(r->err, sizeof(r->err), "%s by %s%s: %s", tls_failures[i].what,
			    tc->ca_file != NULL ? "the CA file " : "the system's CAs",
			    tc->ca_file != NULL ? tc->ca_file : "", detail);
		else
			snprintf(r->err, sizeof(r->err), "%s: %s", tls_failures[i].what, detail);
		if (tls_failures[i].verify)
			snprintf(tc->tls_error, sizeof(tc->tls_error), "%s", r->err);
		return r->err;
	}
	snprintf(r->err, sizeof(r->err), "%s", detail);
	return r->err;
}

static void
finish(struct tc_request *r, CURLcode result)
{
	struct tracker_client *tc = r->tc;
	struct json_object *json = NULL;
	const char *err = NULL;
	long status = 0;
	char *ip = NULL;

	if (result == CURLE_OK)
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	if (worth_failover(result, status, r->too_big)) {
		base_failed(tc, r->base);
		if (r->tries < tc->nbases) {
			curl_multi_remove_handle(tc->multi, r->easy);
			curl_easy_cleanup(r->easy);
			r->easy = NULL;
			curl_slist_free_all(r->headers);
			r->headers = NULL;
			r->body.len = 0;
			if (req_send(r) == 0)
				return;
		}
	} else if (result == CURLE_OK) {
		tc->fails[r->base] = 0;
		tc->down_until[r->base] = 0;
	}
	req_unlink(r);
	tc->tls_error[0] = '\0';
	tc->retry_after = 0;
	if (result != CURLE_OK) {
		err = r->too_big ? "answer too large" : describe_failure(r, result);
	} else {
		curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
		curl_off_t after = 0;
		if (curl_easy_getinfo(r->easy, CURLINFO_RETRY_AFTER, &after) == CURLE_OK &&
		    after > 0)
			tc->retry_after = after > TRACKER_CLIENT_RETRY_AFTER_MAX
			    ? TRACKER_CLIENT_RETRY_AFTER_MAX
			    : (long)after;
		if (curl_easy_getinfo(r->easy, CURLINFO_LOCAL_IP, &ip) == CURLE_OK && ip != NULL &&
		    ip[0] != '\0')
			snprintf(tc->local_ip, sizeof(tc->local_ip), "%s", ip);
		if (r->body.len > 0) {
			struct json_tokener *tok = json_tokener_new();
			json = json_tokener_parse_ex(tok, r->body.data, (int)r->body.len);
			if (json_tokener_get_error(tok) != json_tokener_success) {
				json_object_put(json);
				json = NULL;
			}
			json_tokener_free(tok);
		}
	}
	r->done((int)status, json, err, r->arg);
	json_object_put(json);
	req_free(r);
}

static void release_all(struct tracker_client *tc);

/* Callbacks may start requests or free the client: the free then waits
 * until this walk ends. */
static void
check_done(struct tracker_client *tc)
{
	CURLMsg *msg;
	int left;

	tc->dispatching++;
	while (!tc->freeing && (msg = curl_multi_info_read(tc->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		struct tc_request *r = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		finish(r, msg->data.result);
	}
	tc->dispatching--;
	if (tc->freeing && tc->dispatching == 0)
		release_all(tc);
}

static void
on_poll(uv_poll_t *p, int status, int events)
{
	struct tc_socket *s = p->data;
	struct tracker_client *tc = s->tc;
	int flags = 0, running;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	if (events & UV_READABLE)
		flags |= CURL_CSELECT_IN;
	if (events & UV_WRITABLE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(tc->multi, s->fd, flags, &running);
	check_done(tc);
}

static void
on_timer(uv_timer_t *t)
{
	struct tracker_client *tc = t->data;
	int running;

	curl_multi_socket_action(tc->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(tc);
}

static int
curl_socket_cb(CURL *easy, curl_socket_t fd, int action, void *userp, void *socketp)
{
	struct tracker_client *tc = userp;
	struct tc_socket *s = socketp;
	int events = 0;

	(void)easy;
	if (action == CURL_POLL_REMOVE) {
		if (s != NULL) {
			curl_multi_assign(tc->multi, fd, NULL);
			sock_close(s);
		}
		return 0;
	}
	if (s == NULL) {
		s = xcalloc(1, sizeof(*s));
		if (uv_poll_init_socket(tc->loop, &s->poll, fd) != 0) {
			free(s);
			return -1;
		}
		s->fd = fd;
		s->tc = tc;
		s->poll.data = s;
		s->next = tc->socks;
		if (tc->socks != NULL)
			tc->socks->prev = s;
		tc->socks = s;
		tc->open_handles++;
		curl_multi_assign(tc->multi, fd, s);
	}
	if (action == CURL_POLL_IN || action == CURL_POLL_INOUT)
		events |= UV_READABLE;
	if (action == CURL_POLL_OUT || action == CURL_POLL_INOUT)
		events |= UV_WRITABLE;
	return uv_poll_start(&s->poll, events, on_poll) == 0 ? 0 : -1;
}

static int
curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct tracker_client *tc = userp;

	(void)multi;
	if (timeout_ms < 0)
		uv_timer_stop(&tc->timer);
	else
		uv_timer_start(&tc->timer, on_timer, (uint64_t)timeout_ms, 0);
	return 0;
}

static size_t
on_body(char *data, size_t size, size_t n, void *arg)
{
	struct tc_request *r = arg;
	size_t len = size * n;

	if (r->body.len + len > TRACKER_CLIENT_MAX_BODY) {
		r->too_big = 1;
		return 0;
	}
	buf_append(&r->body, data, len);
	return len;
}

/* 127.0.0.0/8, ::1 (or ::ffff:127.x.x.x), localhost: host as libcurl's
 * URL parser gives it, IPv6 in brackets. */
static int
host_is_loopback(const char *host)
{
	char bare[INET6_ADDRSTRLEN];
	struct in_addr a4;
	struct in6_addr a6;
	size_t n = strlen(host);

	if (strcasecmp(host, "localhost") == 0)
		return 1;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (n < 2 || host[0] != '[' || host[n - 1] != ']' || n - 2 >= sizeof(bare))
		return 0;
	memcpy(bare, host + 1, n - 2);
	bare[n - 2] = '\0';
	if (inet_pton(AF_INET6, bare, &a6) != 1)
		return 0;
	return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
}

/* Each of the ';'-separated pins must be sha256// and the base64 of 32
 * bytes: a typo would otherwise fail every connection, and only then. */
static int
pin_valid(const char *pin)
{
	size_t plen = strlen(TRACKER_CLIENT_PIN_PREFIX);

	for (const char *p = pin;;) {
		const char *end = strchr(p, ';');
		size_t n = end != NULL ? (size_t)(end - p) : strlen(p), bin_len = 0;
		unsigned char bin[crypto_hash_sha256_BYTES + 1];
		const char *last = NULL;

		if (n <= plen || strncmp(p, TRACKER_CLIENT_PIN_PREFIX, plen) != 0 ||
		    sodium_base642bin(bin, sizeof(bin), p + plen, n - plen, NULL, &bin_len, &last,
		        sodium_base64_VARIANT_ORIGINAL) != 0 ||
		    last != p + n || bin_len != crypto_hash_sha256_BYTES)
			return 0;
		if (end == NULL)
			return 1;
		p = end + 1;
	}
}

/* What is wrong with url under cfg (its scheme and host read into *tls
 * and *loopback), or NULL. */
static const char *
url_problem(const char *url, const struct tracker_client_config *cfg, int *tls, int *loopback)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	const char *why = NULL;

	if (u == NULL)
		return "libcurl cannot parse URLs";
	if (curl_url_set(u, CURLUPART_URL, url, CURLU_GUESS_SCHEME) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		why = "not a URL";
		goto out;
	}
	*tls = strcasecmp(scheme, "https") == 0;
	*loopback = host_is_loopback(host);
	if (!*tls && strcasecmp(scheme, "http") != 0)
		why = "only http:// and https:// are spoken";
	else if (!*tls && (cfg->ca_file != NULL || cfg->pin != NULL))
		why = "a CA file or a pin needs an https:// tracker";
	else if (!*tls && !*loopback && !cfg->allow_insecure)
		why = "plain HTTP to another machine would show the password and the session "
		      "token to anyone on the path; use https:// (or --allow-insecure-tracker)";
	else if (cfg->pin != NULL && !pin_valid(cfg->pin))
		why = "the pin is not sha256// and the base64 of a SHA-256 hash";
out:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return why;
}

/* Splits cfg->base_url at its commas into tc->bases, each checked by
 * url_problem(); tc->tls if any is https, tc->loopback if all are
 * loopback. NULL, or what is wrong (in an allocated text). */
static char *
bases_parse(struct tracker_client *tc, const struct tracker_client_config *cfg)
{
	const char *all = cfg->base_url, *end = all + strlen(all);

	tc->loopback = 1;
	for (const char *p = all; p < end;) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		const char *stop = comma != NULL ? comma : end;
		size_t n = (size_t)(stop - p);
		int tls = 0, loopback = 0;
		const char *why;

		while (n > 0 && p[n - 1] == '/')
			n--;
		if (n > 0 && tc->nbases < TRACKER_CLIENT_MAX_URLS)
			tc->bases[tc->nbases] = xstrndup(p, n);
		p = stop + 1;
		if (n == 0 || tc->nbases == TRACKER_CLIENT_MAX_URLS)
			continue;
		if ((why = url_problem(tc->bases[tc->nbases], cfg, &tls, &loopback)) != NULL) {
			struct buf b;
			buf_init(&b);
			buf_printf(&b, "tracker %s: %s", tc->bases[tc->nbases], why);
			free(tc->bases[tc->nbases]);
			return b.data;
		}
		tc->tls_of[tc->nbases++] = (unsigned char)tls;
		tc->tls |= tls;
		tc->loopback &= loopback;
	}
	if (tc->nbases == 0) {
		struct buf b;
		buf_init(&b);
		buf_printf(&b, "tracker %s: not a URL", all);
		return b.data;
	}
	return NULL;
}

static void
bases_free(struct tracker_client *tc)
{
	for (size_t i = 0; i < tc->nbases; i++)
		free(tc->bases[i]);
}

struct tracker_client *
tracker_client_new(uv_loop_t *loop, const struct tracker_client_config *cfg, char **cause)
{
	struct tracker_client *tc = xcalloc(1, sizeof(*tc));

	if ((*cause = bases_parse(tc, cfg)) != NULL) {
		bases_free(tc);
		free(tc);
		return NULL;
	}
	/* TLS costs megabytes of resident memory at start: only for https. */
	if (curl_global_init(tc->tls ? CURL_GLOBAL_DEFAULT : CURL_GLOBAL_NOTHING) != CURLE_OK) {
		bases_free(tc);
		free(tc);
		*cause = xstrdup("libcurl: cannot initialise");
		return NULL;
	}
	tc->loop = loop;
	tc->ca_file = cfg->ca_file != NULL ? xstrdup(cfg->ca_file) : NULL;
	tc->pin = cfg->pin != NULL ? xstrdup(cfg->pin) : NULL;
	if ((tc->multi = curl_multi_init()) == NULL) {
		bases_free(tc);
		free(tc->ca_file);
		free(tc->pin);
		free(tc);
		curl_global_cleanup();
		*cause = xstrdup("libcurl: cannot make a multi handle");
		return NULL;
	}
	curl_multi_setopt(tc->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
	curl_multi_setopt(tc->multi, CURLMOPT_SOCKETDATA, tc);
	curl_multi_setopt(tc->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
	curl_multi_setopt(tc->multi, CURLMOPT_TIMERDATA, tc);
	uv_timer_init(loop, &tc->timer);
	tc->timer.data = tc;
	tc->open_handles = 1;
	return tc;
}

static void
release_all(struct tracker_client *tc)
{
	while (tc->reqs != NULL) {
		struct tc_request *r = tc->reqs;
		req_unlink(r);
		req_free(r);
	}
	/* Cleanup may report sockets removed; what it does not, we close. */
	curl_multi_cleanup(tc->multi);
	tc->multi = NULL;
	while (tc->socks != NULL)
		sock_close(tc->socks);
	uv_timer_stop(&tc->timer);
	uv_close((uv_handle_t *)&tc->timer, handle_closed);
}

void
tracker_client_free(struct tracker_client *tc)
{
	if (tc == NULL || tc->freeing)
		return;
	tc->freeing = 1;
	if (tc->dispatching == 0)
		release_all(tc);
}

void
tracker_client_set_token(struct tracker_client *tc, const char *token)
{
	free(tc->token);
	tc->token = token != NULL ? xstrdup(token) : NULL;
}

/* A CA file, a pin, or both; a pin alone replaces the CA check (libcurl
 * checks the pin with peer verification off), and the host name is
 * checked whenever a CA is. */
static void
set_tls(struct tracker_client *tc, size_t base, CURL *easy)
{
	if (!tc->tls_of[base])
		return;
	curl_easy_setopt(easy, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	if (tc->ca_file != NULL)
		curl_easy_setopt(easy, CURLOPT_CAINFO, tc->ca_file);
	if (tc->pin != NULL)
		curl_easy_setopt(easy, CURLOPT_PINNEDPUBLICKEY, tc->pin);
	if (tc->pin != NULL && tc->ca_file == NULL) {
		curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
	}
}

/* Starts r on the URL base_pick() gives; -1 if curl cannot. */
static int
req_send(struct tc_request *r)
{
	struct tracker_client *tc = r->tc;
	struct buf url;

	r->base = base_pick(tc);
	r->tries++;
	if ((r->easy = curl_easy_init()) == NULL)
		return -1;
	buf_init(&url);
	buf_printf(&url, "%s%s", tc->bases[r->base], r->path);
	curl_easy_setopt(r->easy, CURLOPT_URL, url.data);
	buf_fini(&url);
	r->headers = curl_slist_append(r->headers, "Accept: application/json");
	r->headers = curl_slist_append(r->headers, "Expect:");
	if (tc->token != NULL) {
		struct buf h;
		buf_init(&h);
		buf_printf(&h, "Authorization: Bearer %s", tc->token);
		r->headers = curl_slist_append(r->headers, h.data);
		buf_fini(&h);
	}
	if (r->method == TRACKER_POST) {
		r->headers = curl_slist_append(r->headers, "Content-Type: application/json");
		curl_easy_setopt(r->easy, CURLOPT_COPYPOSTFIELDS, r->post);
	}
	curl_easy_setopt(r->easy, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(r->easy, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(r->easy, CURLOPT_PRIVATE, r);
	curl_easy_setopt(r->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, r->timeout_ms);
	curl_easy_setopt(
	    r->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)TRACKER_CLIENT_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(r->easy, CURLOPT_USERAGENT, "hychat/" HYCHAT_VERSION);
	curl_easy_setopt(r->easy, CURLOPT_PROTOCOLS_STR, tc->tls_of[r->base] ? "https" : "http");
	curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->errbuf);
	set_tls(tc, r->base, r->easy);
	if (curl_multi_add_handle(tc->multi, r->easy) != CURLM_OK) {
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
		return -1;
	}
	return 0;
}

int
tracker_client_request(struct tracker_client *tc, enum tracker_method method, const char *path,
    struct json_object *body, long timeout_ms, tracker_client_fn *done, void *arg)
{
	struct tc_request *r;

	if (tc->freeing)
		return -1;
	r = xcalloc(1, sizeof(*r));
	r->tc = tc;
	r->done = done;
	r->arg = arg;
	r->method = method;
	r->path = xstrdup(path);
	r->timeout_ms = timeout_ms > 0 ? timeout_ms : (long)TRACKER_CLIENT_TIMEOUT_MS;
	if (method == TRACKER_POST)
		r->post = xstrdup(body != NULL
		        ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN)
		        : "{}");
	buf_init(&r->body);
	if (req_send(r) < 0) {
		curl_slist_free_all(r->headers);
		free(r->path);
		free(r->post);
		free(r);
		return -1;
	}
	r->next = tc->reqs;
	if (tc->reqs != NULL)
		tc->reqs->prev = r;
	tc->reqs = r;
	tc->pending++;
	return 0;
}

unsigned
tracker_client_pending(struct tracker_client *tc)
{
	return tc->pending;
}

const char *
tracker_client_local_ip(const struct tracker_client *tc)
{
	return tc->local_ip;
}

int
tracker_client_is_tls(const struct tracker_client *tc)
{
	return tc->tls;
}

int
tracker_client_is_loopback(const struct tracker_client *tc)
{
	return tc->loopback;
}

long
tracker_client_retry_after(const struct tracker_client *tc)
{
	return tc->retry_after;
}

const char *
tracker_client_tls_error(const struct tracker_client *tc)
{
	return tc->tls_error[0] != '\0' ? tc->tls_error : NULL;
}

int
tracker_client_parse_peer(struct json_object *o, struct tracker_peer *p)
{
	struct json_object *u, *ip, *port, *online, *key;
	int64_t n;

	memset(p, 0, sizeof(*p));
	if (!json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "username", &u) ||
	    !json_object_is_type(u, json_type_string))
		return -1;
	p->username = json_object_get_string(u);
	p->online = !json_object_object_get_ex(o, "online", &online) ||
	    (json_object_is_type(online, json_type_boolean) && json_object_get_boolean(online));
	if (json_object_object_get_ex(o, "pubkey", &key) &&
	    json_object_is_type(key, json_type_string) &&
	    sodium_base642bin(p->key, sizeof(p->key), json_object_get_string(key),
	        (size_t)json_object_get_string_len(key), NULL, &p->keylen, NULL,
	        sodium_base64_VARIANT_ORIGINAL) != 0)
		p->keylen = 0;
	if (!p->online)
		return 0;
	if (!json_object_object_get_ex(o, "ip", &ip) ||
	    !json_object_is_type(ip, json_type_string) ||
	    !json_object_object_get_ex(o, "port", &port) ||
	    !json_object_is_type(port, json_type_int))
		return -1;
	n = json_object_get_int64(port);
	if (n < 1 || n > 65535)
		return -1;
	p->ip = json_object_get_string(ip);
	p->port = (int)n;
	return 0;
}
