/* engine_tracker.c — the tracker session: logging in, registering our
 * address and key, heartbeats, channels and peer lists. A request refused
 * because the token is gone (the tracker restarted, the token expired)
 * logs in again and is sent once more; so does the registration. */
#include "engine_internal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/identity.h"
#include "hychat/log.h"
#include "hychat/util.h"

static void submit_info(struct engine *e);
static void left(
    struct engine *e, int status, struct json_object *body, const char *err, const char *name);

const char *
engine_tracker_message(struct json_object *body, const char *err, int status)
{
	static char fallback[64];
	struct json_object *m;

	if (body != NULL && json_object_object_get_ex(body, "message", &m) &&
	    json_object_is_type(m, json_type_string))
		return json_object_get_string(m);
	if (err != NULL)
		return err;
	snprintf(fallback, sizeof(fallback), "HTTP status %d", status);
	return fallback;
}

static void
call_unlink(struct engine_tcall **list, struct engine_tcall *c)
{
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		*list = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
}

static void
call_push(struct engine_tcall **list, struct engine_tcall *c)
{
	c->prev = NULL;
	c->next = *list;
	if (*list != NULL)
		(*list)->prev = c;
	*list = c;
}

static void
call_free(struct engine_tcall *c)
{
	json_object_put(c->body);
	free(c->path);
	free(c->arg);
	free(c);
}

void
engine_tracker_free_calls(struct engine *e)
{
	while (e->calls != NULL) {
		struct engine_tcall *c = e->calls;
		call_unlink(&e->calls, c);
		call_free(c);
	}
	while (e->waiting != NULL) {
		struct engine_tcall *c = e->waiting;
		call_unlink(&e->waiting, c);
		call_free(c);
	}
}

/* Back online only if the answer says our session still holds: after a
 * tracker restart it answers 401, and "online" waits for the new
 * registration. */
static void
set_reachable(struct engine *e, int status, const char *err)
{
	int reachable = status != 0;

	if (reachable == e->tracker_reachable)
		return;
	e->tracker_reachable = reachable;
	if (!reachable && tracker_client_tls_error(e->tc) != NULL)
		event_error(&e->bus, "%s", tracker_client_tls_error(e->tc));
	if (!reachable)
		engine_emit_tracker(e, "unreachable", err);
	else if (e->ts == ENGINE_ONLINE && status >= 200 && status < 300)
		engine_emit_tracker(e, "online", NULL);
}

static void call_send(struct engine_tcall *c);

/* Hands c's answer to its handler as if the command that started it were
 * running: its answers go to the front end that asked. */
static void
call_back(struct engine_tcall *c, int status, struct json_object *body, const char *err)
{
	struct event_origin saved = *event_origin_get(&c->e->bus);

	event_origin_set(&c->e->bus, &c->origin);
	c->fn(c->e, status, body, err, c->arg);
	event_origin_set(&c->e->bus, &saved);
}

static void
on_answer(int status, struct json_object *body, const char *err, void *arg)
{
	struct engine_tcall *c = arg;
	struct engine *e = c->e;

	call_unlink(&e->calls, c);
	set_reachable(e, status, err);
	if (status == 401 && !c->retried && e->password != NULL && !e->stopping) {
		c->retried = 1;
		call_push(&e->waiting, c);
		e->ts = ENGINE_OFFLINE;
		engine_tracker_login(e);
		return;
	}
	call_back(c, status, body, err);
	call_free(c);
}

static void
call_send(struct engine_tcall *c)
{
	struct engine *e = c->e;

	call_push(&e->calls, c);
	if (tracker_client_request(e->tc, c->method, c->path, c->body,
	        strcmp(c->path, "/logout") == 0 ? ENGINE_QUIT_GRACE_MS : 0, on_answer, c) < 0) {
		call_unlink(&e->calls, c);
		call_back(c, 0, NULL, "cannot start a request");
		call_free(c);
	}
}

void
engine_tracker_call(struct engine *e, enum tracker_method method, const char *path,
    struct json_object *body, engine_tcall_fn *fn, const char *arg)
{
	struct engine_tcall *c;

	if (e->tc == NULL) {
		json_object_put(body);
		return;
	}
	c = xcalloc(1, sizeof(*c));
	c->e = e;
	c->method = method;
	c->path = xstrdup(path);
	c->body = body;
	c->fn = fn;
	c->arg = arg != NULL ? xstrdup(arg) : NULL;
	c->origin = *event_origin_get(&e->bus);
	if (e->ts == ENGINE_LOGGING_IN) {
		c->retried = 1;
		call_push(&e->waiting, c);
		return;
	}
	call_send(c);
}

/* Sends the calls that waited for a login, or fails them. */
static void
release_waiting(struct engine *e, int ok, int status, const char *err)
{
	struct engine_tcall *list = e->waiting;

	e->waiting = NULL;
	while (list != NULL) {
		struct engine_tcall *c = list;
		call_unlink(&list, c);
		if (ok) {
			call_send(c);
		} else {
			call_back(c, status, NULL, err);
			call_free(c);
		}
	}
}

/* Login. */

static void on_relogin(uv_timer_t *t);

/* Tries the login (or the registration) again later, backing off. */
static void
retry_later(struct engine *e)
{
	uint64_t ms = e->relogin_ms;

	e->relogin_ms = ms * 2 > ENGINE_RELOGIN_MAX_MS ? ENGINE_RELOGIN_MAX_MS : ms * 2;
	if (!e->stopping)
		uv_timer_start(&e->relogin, on_relogin, ms, 0);
}

static void
emit_login(struct engine *e, int ok, const char *message)
{
	struct json_object *o = event_new(EVENT_LOGIN_RESULT);

	event_add_str(o, "status", ok ? "success" : "failed");
	event_add_str(o, "username", e->username);
	if (message != NULL)
		event_add_str(o, "message", message);
	event_emit(&e->bus, o);
}

static void
forget_password(struct engine *e)
{
	if (e->password == NULL)
		return;
	sodium_memzero(e->password, strlen(e->password));
	free(e->password);
	e->password = NULL;
}

/* The tracker is not who it should be (its certificate is not trusted, or
 * its key is not the pinned one): the password was not sent, and trying
 * again will not make it so. Said as an error, not retried. */
static void
login_untrusted(struct engine *e, const char *why)
{
	e->ts = ENGINE_OFFLINE;
	e->tracker_reachable = 0;
	emit_login(e, 0, why);
	event_error(&e->bus, "%s", why);
	engine_emit_tracker(e, "unreachable", why);
	forget_password(e);
	release_waiting(e, 0, 0, why);
}

static void
on_login(int status, struct json_object *body, const char *err, void *arg)
{
	struct engine *e = arg;
	struct json_object *tok;

	if (status == 0 && tracker_client_tls_error(e->tc) != NULL) {
		login_untrusted(e, err);
		return;
	}
	set_reachable(e, status, err);
	if (status == 200 && json_object_object_get_ex(body, "token", &tok) &&
	    json_object_is_type(tok, json_type_string)) {
		tracker_client_set_token(e->tc, json_object_get_string(tok));
		e->ts = ENGINE_ONLINE;
		e->relogin_ms = ENGINE_RELOGIN_MIN_MS;
		emit_login(e, 1, NULL);
		submit_info(e);
		engine_profile_push(e, 0);
		release_waiting(e, 1, 0, NULL);
		return;
	}
	e->ts = ENGINE_OFFLINE;
	emit_login(e, 0, engine_tracker_message(body, err, status));
	if (status == 429) {
		/* Throttled (too many attempts from here or for this account):
		 * the password may be right; try again when the tracker says. */
		long after = tracker_client_retry_after(e->tc);
		uint64_t ms = after > 0 ? (uint64_t)after * 1000 : e->relogin_ms;
		engine_emit_tracker(e, "throttled", engine_tracker_message(body, err, status));
		release_waiting(e, 0, status, "not logged in yet: the tracker throttles logins");
		if (ms > e->relogin_ms)
			e->relogin_ms = ms;
		retry_later(e);
		return;
	}
	if (status == 0 || status >= 500) {
		engine_emit_tracker(e, "unreachable", engine_tracker_message(body, err, status));
		release_waiting(e, 0, status, "tracker unreachable");
		retry_later(e);
		return;
	}
	/* Refused: the password is wrong, trying again will not help. */
	forget_password(e);
	release_waiting(e, 0, status, "not logged in");
}

void
engine_tracker_login(struct engine *e)
{
	struct json_object *body;

	if (e->ts == ENGINE_LOGGING_IN || e->password == NULL || e->stopping || e->tc == NULL)
		return;
	uv_timer_stop(&e->relogin);
	uv_timer_stop(&e->heartbeat);
	e->ts = ENGINE_LOGGING_IN;
	tracker_client_set_token(e->tc, NULL);
	body = json_object_new_object();
	event_add_str(body, "username", e->username);
	event_add_str(body, "password", e->password);
	if (tracker_client_request(e->tc, TRACKER_POST, "/login", body, 0, on_login, e) < 0) {
		e->ts = ENGINE_OFFLINE;
		emit_login(e, 0, "cannot start a request");
	}
	json_object_put(body);
}

int
engine_login(struct engine *e, const char *user, const char *password)
{
	if (strcmp(user, e->username) != 0) {
		event_error(&e->bus,
		    "login: this peer runs as %s (start another with --username %.32s)",
		    e->username, user);
		return -1;
	}
	if (e->password != NULL) {
		sodium_memzero(e->password, strlen(e->password));
		free(e->password);
	}
	e->password = xstrdup(password);
	if (e->ts == ENGINE_LOGGING_IN)
		return 0;
	e->ts = ENGINE_OFFLINE;
	engine_tracker_login(e);
	return 0;
}

static void
on_relogin(uv_timer_t *t)
{
	struct engine *e = t->data;

	if (e->ts == ENGINE_ONLINE)
		submit_info(e);
	else
		engine_tracker_login(e);
}

/* Registration of our address, and heartbeats. */

static void
heartbeat_sent(
    struct engine *e, int status, struct json_object *body, const char *err, const char *arg)
{
	if (status == 404)
		submit_info(e);
	else if (status == 200)
		engine_mailbox_hint(e, body);
}

static void
on_heartbeat(uv_timer_t *t)
{
	struct engine *e = t->data;

	if (e->ts == ENGINE_ONLINE)
		engine_tracker_call(e, TRACKER_POST, "/heartbeat", NULL, heartbeat_sent, NULL);
}

static void
on_refresh(uv_timer_t *t)
{
	struct engine *e = t->data;

	engine_presence_tick(e);
	for (struct engine_channel *c = e->channels; c != NULL; c = c->next) {
		c->stale = 1;
		if (c->held != NULL)
			engine_settle_held(e, c, NULL, -1);
	}
}

/* Channels the tracker would not have us in (over its cap of channels a
 * user): we are not members, so they are left here too, and said so. */
static void
drop_refused(struct engine *e, struct json_object *body)
{
	struct json_object *refused, *msg;

	if (!json_object_object_get_ex(body, "refused_channels", &refused) ||
	    !json_object_is_type(refused, json_type_array))
		return;
	const char *why = json_object_object_get_ex(body, "message", &msg) &&
	        json_object_is_type(msg, json_type_string)
	    ? json_object_get_string(msg)
	    : "refused";
	for (size_t i = 0; i < json_object_array_length(refused); i++) {
		const char *name = json_object_get_string(json_object_array_get_idx(refused, i));
		if (name == NULL || engine_channel_find(e, name) == NULL)
			continue;
		event_error(&e->bus, "tracker: not a member of #%s: %s", name, why);
		left(e, 200, NULL, NULL, name);
	}
}
static const char *advertised_ip(struct engine *e);

static void
submitted(struct engine *e, int status, struct json_object *body, const char *err, const char *arg)
{
	struct json_object *iv;
	int64_t interval = 0;

	if (status != 200) {
		if (status != 401)
			event_error(&e->bus, "tracker: registration refused: %s",
			    engine_tracker_message(body, err, status));
		retry_later(e);
		return;
	}
	e->relogin_ms = ENGINE_RELOGIN_MIN_MS;
	drop_refused(e, body);
	if (json_object_object_get_ex(body, "heartbeat_interval", &iv))
		interval = json_object_get_int64(iv);
	if (interval < 1)
		interval = 30;
	/* While idle, a heartbeat is how a lost tracker is noticed: at least
	 * as often as the lists used to be refreshed. */
	e->heartbeat_ms = (uint64_t)interval * 1000;
	if (e->heartbeat_ms > ENGINE_LIST_REFRESH_MS)
		e->heartbeat_ms = ENGINE_LIST_REFRESH_MS;
	uv_timer_start(&e->heartbeat, on_heartbeat, e->heartbeat_ms, e->heartbeat_ms);
	uv_timer_start(&e->refresh, on_refresh, ENGINE_LIST_REFRESH_MS, ENGINE_LIST_REFRESH_MS);
	engine_emit_tracker(e, "online", NULL);
	engine_nat_registered(e, body, advertised_ip(e));
	for (struct engine_channel *c = e->channels; c != NULL; c = c->next) {
		c->dial = strcmp(c->name, ENGINE_BROADCAST) != 0;
		engine_fetch_members(e, c);
	}
	engine_redial_pending(e);
	engine_mailbox_online(e);
	engine_mailbox_hint(e, body);
}

/* The address other peers reach us at: the one we listen on, or else the
 * one our packets to the tracker came from. */
static const char *
advertised_ip(struct engine *e)
{
	const char *ip = tracker_client_local_ip(e->tc);

	if (strcmp(e->listen_host, "0.0.0.0") != 0 && strcmp(e->listen_host, "::") != 0)
		return e->listen_host;
	return ip[0] != '\0' ? ip : "127.0.0.1";
}

static void
submit_info(struct engine *e)
{
	struct json_object *body = json_object_new_object(), *chans = json_object_new_array();
	char key[sodium_base64_ENCODED_LEN(IDENTITY_PUBLIC_BYTES, sodium_base64_VARIANT_ORIGINAL)];

	for (struct engine_channel *c = e->channels; c != NULL; c = c->next)
		json_object_array_add(chans, json_object_new_string(c->name));
	sodium_bin2base64(key, sizeof(key), identity_public_key(e->id), IDENTITY_PUBLIC_BYTES,
	    sodium_base64_VARIANT_ORIGINAL);
	event_add_str(body, "username", e->username);
	event_add_str(body, "ip", advertised_ip(e));
	/* Dual stack: our IPv6 address too, tried first by those who have
	 * one (p2p_net.h). */
	const char *ip6 = e->net != NULL ? p2p_net_ip6(e->net) : "";
	if (ip6[0] != '\0' && strcmp(ip6, advertised_ip(e)) != 0)
		event_add_str(body, "ip6", ip6);
	event_add_int(body, "port", e->peer_port);
	json_object_object_add(body, "channels", chans);
	event_add_str(body, "pubkey", key);
	engine_tracker_call(e, TRACKER_POST, "/submit-info", body, submitted, NULL);
}

/* Registration of an account. */

static void
registered(
    struct engine *e, int status, struct json_object *body, const char *err, const char *user)
{
	struct json_object *o = event_new(EVENT_REGISTER_RESULT);
	int ok = status == 201 || status == 200;

	event_add_str(o, "status", ok ? "success" : "failed");
	event_add_str(o, "username", user);
	if (!ok)
		event_add_str(o, "message", engine_tracker_message(body, err, status));
	event_emit(&e->bus, o);
	if (ok && strcmp(user, e->username) == 0 && e->password != NULL) {
		e->ts = ENGINE_OFFLINE;
		engine_tracker_login(e);
	}
}

int
engine_register(struct engine *e, const char *user, const char *password)
{
	struct json_object *body;

	if (!hy_name_valid(user, strlen(user))) {
		event_error(&e->bus, "register: invalid username: 1 to 32 of A-Z a-z 0-9 _ . -");
		return -1;
	}
	if (strcmp(user, e->username) == 0) {
		if (e->password != NULL) {
			sodium_memzero(e->password, strlen(e->password));
			free(e->password);
		}
		e->password = xstrdup(password);
	}
	body = json_object_new_object();
	event_add_str(body, "username", user);
	event_add_str(body, "password", password);
	engine_tracker_call(e, TRACKER_POST, "/register", body, registered, user);
	return 0;
}

/* Channels. */

static void fetch_page(struct engine *e, struct engine_channel *c, const char *after);

/* A page of a channel's members (or of everyone online, for #broadcast);
 * the list is complete once a page names no "next". */
static void
members_fetched(
    struct engine *e, int status, struct json_object *body, const char *err, const char *name)
{
	struct engine_channel *c = engine_channel_find(e, name);
	struct json_object *peers, *next;

	if (c == NULL)
		return;
	if (status != 200 || !json_object_object_get_ex(body, "peers", &peers) ||
	    !json_object_is_type(peers, json_type_array)) {
		c->fetching = 0;
		c->again = 0; /* the next answer comes from a later request */
		json_object_put(c->pages);
		c->pages = NULL;
		/* Sends wait, on disk, for a list: to whom we knew would be no
		 * one at all after a restart. */
		if (status != 401)
			log_warn(
			    "members of #%s: %s", name, engine_tracker_message(body, err, status));
		engine_members_retry(e);
		return;
	}
	size_t n = json_object_array_length(peers);
	engine_learn_peers(e, peers);
	if (c->pages == NULL)
		c->pages = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(
		    c->pages, json_object_get(json_object_array_get_idx(peers, i)));
	if (json_object_object_get_ex(body, "next", &next) &&
	    json_object_is_type(next, json_type_string) &&
	    hy_name_valid(json_object_get_string(next), strlen(json_object_get_string(next))) &&
	    n > 0 && json_object_array_length(c->pages) < ENGINE_MEMBERS_MAX) {
		fetch_page(e, c, json_object_get_string(next));
		return;
	}
	c->fetching = 0;
	e->members_retry_ms = ENGINE_RELOGIN_MIN_MS;
	if (c->again) {
		/* Messages sent since this list was asked for go by the one asked
		 * for after them: a member who joined just before a send, after
		 * this request was answered, is owed it. */
		c->again = 0;
		json_object_put(c->pages);
		c->pages = NULL;
		engine_fetch_members(e, c);
		return;
	}
	engine_set_members(c, c->pages);
	json_object_put(c->pages);
	c->pages = NULL;
	for (size_t i = 0; c->dial && e->net != NULL && i < c->nmembers; i++)
		if (strcmp(c->members[i], e->username) != 0)
			p2p_net_dial(e->net, c->members[i], 0);
	c->dial = 0;
	engine_settle_held(e, c, NULL, -1);
	engine_flush_channel(e, c, 1);
	engine_backlog_members(e, c);
}

static void
fetch_page(struct engine *e, struct engine_channel *c, const char *after)
{
	char path[sizeof("/get-list?channel=&members=all&after=") + HY_CHANNEL_MAX + HY_NAME_MAX];
	int broadcast = strcmp(c->name, ENGINE_BROADCAST) == 0;

	if (after == NULL && broadcast)
		snprintf(path, sizeof(path), "/get-list");
	else if (after == NULL)
		snprintf(path, sizeof(path), "/get-list?channel=%s&members=all", c->name);
	else if (broadcast)
		snprintf(path, sizeof(path), "/get-list?after=%s", after);
	else
		snprintf(path, sizeof(path), "/get-list?channel=%s&members=all&after=%s", c->name,
		    after);
	engine_tracker_call(e, TRACKER_GET, path, NULL, members_fetched, c->name);
}

static void
on_members_retry(uv_timer_t *t)
{
	struct engine *e = t->data;

	for (struct engine_channel *c = e->channels; c != NULL; c = c->next)
		if (c->queue != NULL || c->recent != NULL)
			engine_fetch_members(e, c);
}

void
engine_members_retry(struct engine *e)
{
	uint64_t ms = e->members_retry_ms;

	if (e->stopping || uv_is_active((uv_handle_t *)&e->members_retry))
		return;
	e->members_retry_ms = ms * 2 > ENGINE_RELOGIN_MAX_MS ? ENGINE_RELOGIN_MAX_MS : ms * 2;
	uv_timer_start(&e->members_retry, on_members_retry, ms, 0);
}

/* A channel's members, offline ones too, through every page: a message is
 * owed to each, and waits in the outbox of those away. The broadcast
 * channel is whoever is online. */
void
engine_fetch_members(struct engine *e, struct engine_channel *c)
{
	if (c->fetching)
		return;
	c->fetching = 1;
	c->again = 0;
	json_object_put(c->pages);
	c->pages = NULL;
	fetch_page(e, c, NULL);
}

static void
emit_channel(struct engine *e, const char *name, int joined, struct json_object *members)
{
	struct json_object *o = event_new(EVENT_CHANNEL);
	char conv[HY_CHANNEL_MAX + 2];

	snprintf(conv, sizeof(conv), "#%s", name);
	event_add_str(o, "channel", name);
	event_add_str(o, "conversation", conv);
	event_add_bool(o, "joined", joined);
	if (members != NULL)
		json_object_object_add(o, "members", json_object_get(members));
	event_emit(&e->bus, o);
}

static void
joined(struct engine *e, int status, struct json_object *body, const char *err, const char *name)
{
	struct engine_channel *c;
	struct json_object *members = NULL;
	char conv[HY_CHANNEL_MAX + 2];

	if (status != 200) {
		event_error(
		    &e->bus, "join: #%s: %s", name, engine_tracker_message(body, err, status));
		return;
	}
	snprintf(conv, sizeof(conv), "#%s", name);
	c = engine_channel_add(e, name);
	c->dial = 1;
	c->stale = 1;
	history_set_joined(e->hist, conv, 1);
	engine_set_last(e, conv);
	json_object_object_get_ex(body, "members", &members);
	emit_channel(e, name, 1, members);
	engine_fetch_members(e, c);
}

int
engine_join(struct engine *e, const char *channel)
{
	char name[HY_CHANNEL_MAX + 1];
	struct json_object *body;

	if (engine_channel_name(e, channel, name, "join") < 0)
		return -1;
	body = json_object_new_object();
	event_add_str(body, "username", e->username);
	event_add_str(body, "channel", name);
	engine_tracker_call(e, TRACKER_POST, "/add-list", body, joined, name);
	return 0;
}

static void
left(struct engine *e, int status, struct json_object *body, const char *err, const char *name)
{
	char conv[HY_CHANNEL_MAX + 2];

	if (status != 200 && status != 404) {
		event_error(
		    &e->bus, "part: #%s: %s", name, engine_tracker_message(body, err, status));
		return;
	}
	snprintf(conv, sizeof(conv), "#%s", name);
	engine_channel_remove(e, name);
	history_set_joined(e->hist, conv, 0);
	emit_channel(e, name, 0, NULL);
}

int
engine_part(struct engine *e, const char *channel)
{
	char name[HY_CHANNEL_MAX + 1];
	struct json_object *body;

	if (engine_channel_name(e, channel, name, "part") < 0)
		return -1;
	if (engine_channel_find(e, name) == NULL) {
		event_error(&e->bus, "part: not in #%s", name);
		return -1;
	}
	body = json_object_new_object();
	event_add_str(body, "username", e->username);
	event_add_str(body, "channel", name);
	engine_tracker_call(e, TRACKER_POST, "/leave", body, left, name);
	return 0;
}

/* Lists. */

static void
looked_up(struct engine *e, int status, struct json_object *body, const char *err, const char *user)
{
	(void)err;
	if (status == 200)
		engine_learn_peer(e, body);
	else if (status == 404)
		engine_presence_tracker(e, user, 0);
	if (e->net != NULL)
		p2p_net_lookup_done(e->net, user, status == 200 || status == 404);
}

static void
member_checked(
    struct engine *e, int status, struct json_object *body, const char *err, const char *arg)
{
	const char *sp = strchr(arg, ' ');
	struct json_object *m;
	struct engine_channel *c;
	char name[HY_CHANNEL_MAX + 1];
	int verdict = -1;

	(void)err;
	if (sp == NULL || (size_t)(sp - arg) > HY_CHANNEL_MAX)
		return;
	memcpy(name, arg, (size_t)(sp - arg));
	name[sp - arg] = '\0';
	if ((c = engine_channel_find(e, name)) == NULL)
		return;
	if (status == 404)
		verdict = 0;
	else if (status != 200)
		verdict = -1;
	else if (strcmp(c->name, ENGINE_BROADCAST) == 0)
		/* Everyone online is a member; one not yet registered again
		 * after a tracker restart may still be: it waits. */
		verdict =
		    json_object_object_get_ex(body, "online", &m) && json_object_get_boolean(m)
		    ? 1
		    : -1;
	else if (json_object_object_get_ex(body, "member", &m) &&
	    json_object_is_type(m, json_type_boolean))
		verdict = json_object_get_boolean(m);
	engine_settle_held(e, c, sp + 1, verdict);
	engine_backlog_verdict(e, c, sp + 1, verdict);
}

void
engine_check_member(struct engine *e, struct engine_channel *c, const char *user)
{
	char path[sizeof("/peers/?channel=") + HY_NAME_MAX + HY_CHANNEL_MAX];
	char arg[HY_CHANNEL_MAX + HY_NAME_MAX + 2];

	if (strcmp(c->name, ENGINE_BROADCAST) == 0)
		snprintf(path, sizeof(path), "/peers/%s", user);
	else
		snprintf(path, sizeof(path), "/peers/%s?channel=%s", user, c->name);
	snprintf(arg, sizeof(arg), "%s %s", c->name, user);
	engine_tracker_call(e, TRACKER_GET, path, NULL, member_checked, arg);
}

void
engine_lookup(struct engine *e, const char *user)
{
	char path[sizeof("/peers/") + HY_NAME_MAX];

	snprintf(path, sizeof(path), "/peers/%s", user);
	engine_tracker_call(e, TRACKER_GET, path, NULL, looked_up, user);
}

static void
listed(struct engine *e, int status, struct json_object *body, const char *err, const char *channel)
{
	struct json_object *peers, *ev, *out;
	size_t n;

	if (status != 200 || !json_object_object_get_ex(body, "peers", &peers) ||
	    !json_object_is_type(peers, json_type_array)) {
		event_error(&e->bus, "list: %s", engine_tracker_message(body, err, status));
		return;
	}
	engine_learn_peers(e, peers);
	ev = event_new(EVENT_PEER_LIST);
	if (channel != NULL)
		event_add_str(ev, "channel", channel);
	else
		json_object_object_add(ev, "channel", NULL);
	out = json_object_new_array();
	n = json_object_array_length(peers);
	for (size_t i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(peers, i), *u, *o;
		if (!json_object_object_get_ex(p, "username", &u))
			continue;
		int state =
		    e->net != NULL ? p2p_net_link_state(e->net, json_object_get_string(u)) : -1;
		o = json_object_new_object();
		json_object_object_foreach(p, k, v)
		    json_object_object_add(o, k, json_object_get(v));
		event_add_bool(o, "self", strcmp(json_object_get_string(u), e->username) == 0);
		event_add_str(o, "link", state >= 0 ? "up" : "down");
		if (state >= 0)
			event_add_bool(o, "encrypted", state);
		else
			json_object_object_add(o, "encrypted", NULL);
		engine_nat_add_path(e, o, json_object_get_string(u));
		json_object_array_add(out, o);
	}
	json_object_object_add(ev, "peers", out);
	event_emit(&e->bus, ev);
}

int
engine_list(struct engine *e, const char *channel)
{
	char name[HY_CHANNEL_MAX + 1];
	char path[sizeof("/get-list?channel=") + HY_CHANNEL_MAX];

	if (channel == NULL) {
		engine_tracker_call(e, TRACKER_GET, "/get-list", NULL, listed, NULL);
		return 0;
	}
	if (engine_channel_name(e, channel, name, "list") < 0)
		return -1;
	snprintf(path, sizeof(path), "/get-list?channel=%s", name);
	engine_tracker_call(e, TRACKER_GET, path, NULL, listed, name);
	return 0;
}

static void list_channels(struct engine *e, const char *after, long page);

/* One page of the tracker's channels, as one channel_list event with its
 * "page" (from 1) and "more"; the next page is asked for at once, in the
 * same asker's name, up to ENGINE_CHANNEL_PAGES_MAX pages. */
static void
channels_listed(
    struct engine *e, int status, struct json_object *body, const char *err, const char *arg)
{
	struct json_object *list, *ev, *out, *next;
	long page = arg != NULL ? strtol(arg, NULL, 10) : 1;
	size_t n;

	if (status != 200 || !json_object_object_get_ex(body, "channels", &list) ||
	    !json_object_is_type(list, json_type_array)) {
		event_error(&e->bus, "channels: %s", engine_tracker_message(body, err, status));
		return;
	}
	ev = event_new(EVENT_CHANNEL_LIST);
	out = json_object_new_array();
	n = json_object_array_length(list);
	for (size_t i = 0; i < n; i++) {
		struct json_object *c = json_object_array_get_idx(list, i), *name, *o;
		if (!json_object_object_get_ex(c, "name", &name))
			continue;
		o = json_object_new_object();
		json_object_object_foreach(c, k, v)
		    json_object_object_add(o, k, json_object_get(v));
		event_add_bool(
		    o, "joined", engine_channel_find(e, json_object_get_string(name)) != NULL);
		json_object_array_add(out, o);
	}
	json_object_object_add(ev, "channels", out);
	int more = n > 0 && page < ENGINE_CHANNEL_PAGES_MAX &&
	    json_object_object_get_ex(body, "next", &next) &&
	    json_object_is_type(next, json_type_string) &&
	    hy_name_valid(json_object_get_string(next), strlen(json_object_get_string(next)));
	event_add_int(ev, "page", page);
	event_add_bool(ev, "more", more);
	event_emit(&e->bus, ev);
	if (more)
		list_channels(e, json_object_get_string(next), page + 1);
}

static void
list_channels(struct engine *e, const char *after, long page)
{
	char path[sizeof("/channels?after=") + HY_CHANNEL_MAX], num[24];

	if (after == NULL)
		snprintf(path, sizeof(path), "/channels");
	else
		snprintf(path, sizeof(path), "/channels?after=%s", after);
	snprintf(num, sizeof(num), "%ld", page);
	engine_tracker_call(e, TRACKER_GET, path, NULL, channels_listed, num);
}

int
engine_channels(struct engine *e)
{
	list_channels(e, NULL, 1);
	return 0;
}
