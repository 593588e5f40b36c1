/* engine.c — the engine's life (start, stop, the data directory), its
 * channels and conversations, and the commands that only read state. */
#include "engine_internal.h"

#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hychat/identity.h"
#include "hychat/log.h"
#include "hychat/sendlog.h"
#include "hychat/util.h"

#define ENGINE_DIR_MODE 0700

int
engine_channel_name(struct engine *e, const char *in, char *out, const char *what)
{
	if (hy_channel_canon(in, strlen(in), out) < 0) {
		event_error(&e->bus,
		    "%s: invalid channel \"%.64s\": 1 to 64 of A-Z a-z 0-9 _ . -, with an optional "
		    "#",
		    what, in);
		return -1;
	}
	return 0;
}

/* Channels. */

struct engine_channel *
engine_channel_find(struct engine *e, const char *name)
{
	for (struct engine_channel *c = e->channels; c != NULL; c = c->next)
		if (strcmp(c->name, name) == 0)
			return c;
	return NULL;
}

struct engine_channel *
engine_channel_add(struct engine *e, const char *name)
{
	struct engine_channel *c = engine_channel_find(e, name), **p;

	if (c != NULL)
		return c;
	c = xcalloc(1, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	c->queue_tail = &c->queue;
	c->recent_tail = &c->recent;
	c->held_tail = &c->held;
	for (p = &e->channels; *p != NULL; p = &(*p)->next)
		;
	*p = c;
	return c;
}

static void
free_members(struct engine_channel *c)
{
	for (size_t i = 0; i < c->nmembers; i++)
		free(c->members[i]);
	free(c->members);
	c->members = NULL;
	c->nmembers = 0;
}

static void
channel_free(struct engine_channel *c)
{
	free_members(c);
	engine_free_pending(c);
	json_object_put(c->pages);
	free(c);
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
engine_is_member(const struct engine_channel *c, const char *user)
{
	return c->members != NULL &&
	    bsearch(&user, c->members, c->nmembers, sizeof(*c->members), cmp_name) != NULL;
}

void
engine_channel_remove(struct engine *e, const char *name)
{
	for (struct engine_channel **p = &e->channels; *p != NULL; p = &(*p)->next) {
		if (strcmp((*p)->name, name) == 0) {
			struct engine_channel *c = *p;
			*p = c->next;
			channel_free(c);
			return;
		}
	}
}

void
engine_set_members(struct engine_channel *c, struct json_object *peers)
{
	size_t n = json_object_array_length(peers);

	/* Messages went out on the old list while this one was asked for:
	 * keep it, to tell who they have not reached. */
	if (c->recent != NULL && c->sent_to == NULL) {
		c->sent_to = c->members;
		c->nsent_to = c->nmembers;
		c->members = NULL;
		c->nmembers = 0;
	}
	free_members(c);
	c->members = xcalloc(n + 1, sizeof(*c->members));
	for (size_t i = 0; i < n; i++) {
		struct json_object *p = json_object_array_get_idx(peers, i), *u;
		if (json_object_object_get_ex(p, "username", &u) &&
		    json_object_is_type(u, json_type_string))
			c->members[c->nmembers++] = xstrdup(json_object_get_string(u));
	}
	qsort(c->members, c->nmembers, sizeof(*c->members), cmp_name);
	c->fetched_ms = hy_now_ms();
	c->stale = 0;
}

void
engine_learn_peers(struct engine *e, struct json_object *peers)
{
	size_t n = json_object_array_length(peers);

	for (size_t i = 0; i < n; i++)
		engine_learn_peer(e, json_object_array_get_idx(peers, i));
}

void
engine_learn_peer(struct engine *e, struct json_object *o)
{
	struct tracker_peer p;

	if (e->net == NULL || tracker_client_parse_peer(o, &p) < 0 ||
	    !hy_name_valid(p.username, strlen(p.username)) || strcmp(p.username, e->username) == 0)
		return;
	engine_presence_tracker(e, p.username, p.online);
	engine_nat_learn_peer(e, o);
	if (p.online)
		p2p_net_set_peer(
		    e->net, p.username, p.ip, p.port, p.keylen > 0 ? p.key : NULL, p.keylen);
	else
		p2p_net_set_offline(e->net, p.username, p.keylen > 0 ? p.key : NULL, p.keylen);
}

void
engine_set_last(struct engine *e, const char *conv)
{
	if (e->last_conv != NULL && strcmp(e->last_conv, conv) == 0)
		return;
	free(e->last_conv);
	e->last_conv = xstrdup(conv);
}

void
engine_emit_tracker(struct engine *e, const char *state, const char *message)
{
	struct json_object *o = event_new(EVENT_TRACKER);

	event_add_str(o, "state", state);
	if (message != NULL)
		event_add_str(o, "message", message);
	/* Whether the password and the token cross the wire encrypted. */
	event_add_bool(o, "tls", e->tc != NULL && tracker_client_is_tls(e->tc));
	if (e->tc != NULL && !tracker_client_is_tls(e->tc))
		event_add_bool(o, "loopback", tracker_client_is_loopback(e->tc));
	event_emit(&e->bus, o);
}

/* Life. */

static int
make_dirs(const char *path, char **cause)
{
	char *p = xstrdup(path);
	int rc = 0;

	for (char *s = p + 1; rc == 0; s++) {
		if (*s != '/' && *s != '\0')
			continue;
		char c = *s;
		*s = '\0';
		if (mkdir(p, ENGINE_DIR_MODE) < 0 && errno != EEXIST) {
			struct buf b;
			buf_init(&b);
			buf_printf(&b, "%s: %s", p, strerror(errno));
			*cause = b.data;
			rc = -1;
		}
		*s = c;
		if (c == '\0')
			break;
	}
	free(p);
	return rc;
}

static char *
default_data_dir(const char *user)
{
	const char *xdg = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	struct buf b;

	buf_init(&b);
	if (xdg != NULL && xdg[0] == '/')
		buf_printf(&b, "%s/hychat/%s", xdg, user);
	else
		buf_printf(&b, "%s/.local/share/hychat/%s", home != NULL ? home : ".", user);
	return b.data;
}

static char *
path_in(const struct engine *e, const char *file)
{
	struct buf b;

	buf_init(&b);
	buf_printf(&b, "%s/%s", e->data_dir, file);
	return b.data;
}

/* The commit, and the acknowledgements of what it stored; the sending
 * journal is cleared, or, if the commit failed, what it holds is stored
 * again at once. */
static void
commit_now(struct engine *e)
{
	char *cause = NULL;

	if (e->db != NULL && peerdb_commit(e->db, &cause) < 0) {
		log_error("%s", cause);
		free(cause);
		if (e->sendlog != NULL)
			engine_replay_sent(e);
	} else if (e->sendlog != NULL && sendlog_clear(e->sendlog, &cause) < 0) {
		log_error("%s", cause);
		free(cause);
	}
	uv_timer_stop(&e->commit_timer);
	engine_flush_acks(e);
}

void
engine_ordered(struct engine *e)
{
	e->turn_ordered = 1;
}

/* Writes what the links queued; whatever queues next is the next turn's. */
static void
flush_links(struct engine *e)
{
	if (e->net != NULL)
		p2p_net_flush(e->net);
	e->turn_ordered = 0;
}

static void
on_commit_timer(uv_timer_t *t)
{
	struct engine *e = t->data;

	commit_now(e);
	flush_links(e);
}

/* Whether the turn's links are written before its commit: if it sent
 * direct messages, now in the sending journal (sendlog.h), and queued no
 * frame that tells of something else it stored (engine_ordered). Those
 * messages then leave without waiting for a commit, which may come in a
 * later turn (commit_due); a sender killed before it stores them at its
 * next start. Channel messages, messages in clear and file frames still
 * wait for the turn's commit. */
static int
links_first(struct engine *e)
{
	size_t n = e->sendlog != NULL ? sendlog_count(e->sendlog) : 0;
	char *cause = NULL;

	if (n == 0 || e->net == NULL || e->turn_ordered) {
		if (e->sendlog != NULL)
			sendlog_drop(e->sendlog);
		return 0;
	}
	if (sendlog_write(e->sendlog, &cause) < 0) {
		log_error("%s", cause);
		free(cause);
		return 0;
	}
	p2p_net_flush(e->net);
	return 1;
}

/* Whether the turn commits now. What a turn received may wait, and so may
 * the direct messages it sent through the journal (links_first), so that
 * a run of messages one a turn (each member of a channel gets a channel's
 * messages so; a user types them so) shares a commit: a commit costs
 * about as much as the rest of a message. It waits at most until the
 * first turn ENGINE_COMMIT_DELAY_MS after its transaction began, or the
 * timer at twice that; acknowledgements wait with it, so what is
 * acknowledged is stored. Anything else written, a message sent outside
 * the journal (stored before any byte of it leaves), a stop, or a full
 * ack commits at once. */
static int
commit_due(struct engine *e, int sent)
{
	if (e->db == NULL || sent || e->stopping || e->nacks >= ENGINE_ACK_MAX_IDS)
		return 1;
	return peerdb_pending(e->db) != PEERDB_DEFERRABLE ||
	    uv_now(e->loop) - peerdb_begun_ms(e->db) >= ENGINE_COMMIT_DELAY_MS;
}

/* Right after the turn's I/O callbacks: the front ends' output, the
 * turn's commit (or not yet: commit_due), then the links' output, so
 * that what a peer is told has been stored first. */
static void
on_commit(uv_check_t *c)
{
	struct engine *e = c->data;
	int received = e->acks != NULL; /* a message came in and is not yet stored */
	int sent = e->turn_sent;
	int first = links_first(e);

	/* The front ends are told first: what they show costs the commit no
	 * latency, and a message shown and then lost in a crash comes again,
	 * since it is acknowledged only once committed (below). The links wait
	 * for the commit, unless the turn's direct messages, which the
	 * journal holds, are all that must wait (links_first): a message sent
	 * is stored in the sender's history and outbox, or journaled, before
	 * any byte of it leaves, so a sender killed in this turn never leaves
	 * a message that some members have and no outbox will send to the
	 * others; and the acks it holds are for messages stored. */
	event_turn_end(&e->bus);
	e->turn_sent = 0;
	if ((e->kill_before_commit == KILL_AFTER_RECEIVING && received) ||
	    (e->kill_before_commit == KILL_AFTER_SENDING && sent && (e->kill_sends -= sent) <= 0))
		raise(SIGKILL); /* the crashes the ordering is tested against */
	if (commit_due(e, sent && !first))
		commit_now(e);
	else if (!uv_is_active((uv_handle_t *)&e->commit_timer))
		uv_timer_start(&e->commit_timer, on_commit_timer, 2 * ENGINE_COMMIT_DELAY_MS, 0);
	flush_links(e);
}

static void
on_handle_closed(uv_handle_t *h)
{
	struct engine *e = h->data;

	e->handles--;
}

static void
init_timer(struct engine *e, uv_timer_t *t)
{
	uv_timer_init(e->loop, t);
	t->data = e;
	e->handles++;
}

static int
open_storage(struct engine *e, char **cause)
{
	char *path;

	if (make_dirs(e->data_dir, cause) < 0)
		return -1;
	path = path_in(e, IDENTITY_FILE);
	e->id = identity_load(path, cause);
	free(path);
	if (e->id == NULL)
		return -1;
	path = path_in(e, KNOWN_PEERS_FILE);
	e->known = known_peers_open(path, cause);
	free(path);
	if (e->known == NULL)
		return -1;
	path = path_in(e, PEERDB_FILE);
	e->db = peerdb_open(path, e->loop, cause);
	free(path);
	if (e->db == NULL || (e->hist = history_new(e->db, cause)) == NULL ||
	    (e->outbox = outbox_new(e->db, cause)) == NULL ||
	    (e->contacts = contacts_open(e->db, cause)) == NULL)
		return -1;
	path = path_in(e, SENDLOG_FILE);
	e->sendlog = sendlog_open(path, cause);
	free(path);
	if (e->sendlog == NULL)
		return -1;
	engine_replay_sent(e);
	return 0;
}

/* Channels joined in an earlier run are joined again (the tracker keeps
 * the membership; we must also take their messages). */
static void
rejoin(const char *conv, void *arg)
{
	struct engine *e = arg;
	char name[HY_CHANNEL_MAX + 1];

	if (conv[0] == '#' && strlen(conv + 1) <= HY_CHANNEL_MAX) {
		snprintf(name, sizeof(name), "%s", conv + 1);
		engine_channel_add(e, name);
	}
}

/* The first port from ENGINE_DEFAULT_PORT that host lets us bind, found
 * by binding it for a moment (at start, before the loop runs); 0 if none
 * of ENGINE_PORT_TRIES is free. */
static int
first_free_port(const char *host)
{
	struct sockaddr_storage sa;
	int one = 1;

	for (int port = ENGINE_DEFAULT_PORT; port < ENGINE_DEFAULT_PORT + ENGINE_PORT_TRIES;
	     port++) {
		int fd, ok;
		memset(&sa, 0, sizeof(sa));
		if (uv_ip4_addr(host, port, (struct sockaddr_in *)&sa) != 0 &&
		    uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa) != 0)
			return 0;
		if ((fd = socket(sa.ss_family, SOCK_STREAM, 0)) < 0)
			return 0;
		/* As libuv binds: a port in TIME_WAIT is free. */
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		ok = bind(fd, (struct sockaddr *)&sa,
		         sa.ss_family == AF_INET ? sizeof(struct sockaddr_in)
		                                 : sizeof(struct sockaddr_in6)) == 0;
		close(fd);
		if (ok)
			return port;
	}
	return 0;
}

struct engine *
engine_new(uv_loop_t *loop, const struct engine_config *cfg, char **cause)
{
	static const char *const defaults[] = ENGINE_DEFAULT_CHANNELS;
	struct engine *e;
	struct p2p_net_config nc;
	struct tracker_client_config tcc = { 0 };

	if (cfg->username == NULL || !hy_name_valid(cfg->username, strlen(cfg->username))) {
		*cause = xstrdup("invalid username: " HY_NAME_RULE);
		return NULL;
	}
	if (cfg->peer_port < 0 || cfg->peer_port > 65535) {
		*cause = xstrdup("invalid peer port: 1 to 65535");
		return NULL;
	}
	e = xcalloc(1, sizeof(*e));
	e->loop = loop;
	e->acked_tail = &e->acked;
	event_bus_init(&e->bus);
	snprintf(e->username, sizeof(e->username), "%s", cfg->username);
	e->peer_port = cfg->peer_port;
	e->allow_plaintext = cfg->allow_plaintext;
	e->auto_away_ms = cfg->auto_away_minutes > 0 ? (uint64_t)cfg->auto_away_minutes * 60000 : 0;
	e->input_ms = hy_now_ms();
	{
		const char *kill = getenv(ENGINE_KILL_BEFORE_COMMIT_ENV);
		e->kill_before_commit = kill == NULL ? KILL_NEVER
		    : strncmp(kill, "send", 4) == 0  ? KILL_AFTER_SENDING
		                                     : KILL_AFTER_RECEIVING;
		e->kill_sends = 1;
		if (kill != NULL && strncmp(kill, "send:", 5) == 0 &&
		    hy_parse_number(kill + 5, 1, 1000000, &e->kill_sends) < 0)
			e->kill_sends = 1;
	}
	engine_settings_init(e, cfg);
	e->listen_host =
	    xstrdup(cfg->listen_host != NULL ? cfg->listen_host : ENGINE_DEFAULT_LISTEN);
	e->data_dir =
	    cfg->data_dir != NULL ? xstrdup(cfg->data_dir) : default_data_dir(e->username);
	e->relogin_ms = ENGINE_RELOGIN_MIN_MS;
	if (cfg->password != NULL)
		e->password = xstrdup(cfg->password);
	if (open_storage(e, cause) < 0) {
		engine_free(e);
		return NULL;
	}
	if (e->peer_port == 0 && (e->peer_port = first_free_port(e->listen_host)) == 0) {
		hy_cause(cause, "no free peer port on %s from %d to %d: give --peer-port",
		    e->listen_host, ENGINE_DEFAULT_PORT,
		    ENGINE_DEFAULT_PORT + ENGINE_PORT_TRIES - 1);
		engine_free(e);
		return NULL;
	}
	nc.username = e->username;
	nc.host = e->listen_host;
	nc.port = e->peer_port;
	nc.id = e->id;
	nc.known = e->known;
	nc.allow_plaintext = e->allow_plaintext;
	tcc.base_url = cfg->tracker_url != NULL ? cfg->tracker_url : ENGINE_DEFAULT_TRACKER;
	tcc.ca_file = cfg->tracker_ca;
	tcc.pin = cfg->tracker_pin;
	tcc.allow_insecure = cfg->allow_insecure_tracker;
	if ((e->net = p2p_net_new(loop, &nc, &engine_net_ops, e, cause)) == NULL ||
	    (e->tc = tracker_client_new(loop, &tcc, cause)) == NULL) {
		engine_free(e);
		return NULL;
	}
	if (engine_file_init(e, cause) < 0) {
		engine_free(e);
		return NULL;
	}
	if (engine_mailbox_init(e, cause) < 0) { /* the first handle, if it succeeds */
		engine_free(e);
		return NULL;
	}
	engine_backlog_init(e);
	for (size_t i = 0; i < HY_ARRAY_LEN(defaults); i++)
		engine_channel_add(e, defaults[i]);
	if (history_joined(e->hist, rejoin, e) < 0)
		log_warn("history: cannot read the channels joined before");
	uv_check_init(loop, &e->commit);
	e->commit.data = e;
	e->handles++;
	uv_check_start(&e->commit, on_commit);
	uv_unref((uv_handle_t *)&e->commit);
	uv_idle_init(loop, &e->ack_drain);
	e->ack_drain.data = e;
	e->handles++;
	init_timer(e, &e->heartbeat);
	init_timer(e, &e->relogin);
	init_timer(e, &e->refresh);
	init_timer(e, &e->grace);
	init_timer(e, &e->members_retry);
	init_timer(e, &e->hints);
	e->members_retry_ms = ENGINE_RELOGIN_MIN_MS;
	engine_resume_channels(e);
	init_timer(e, &e->typing_timer);
	init_timer(e, &e->commit_timer);
	return e;
}

struct event_bus *
engine_events(struct engine *e)
{
	return &e->bus;
}

const char *
engine_username(const struct engine *e)
{
	return e->username;
}

int
engine_peer_port(const struct engine *e)
{
	return e->peer_port;
}

const char *
engine_last_conversation(const struct engine *e)
{
	return e->last_conv;
}

enum engine_tracker_state
engine_tracker_state(const struct engine *e)
{
	return e->ts;
}

const char *
engine_data_dir(const struct engine *e)
{
	return e->data_dir;
}

void
engine_start(struct engine *e)
{
	char fp[IDENTITY_FINGERPRINT_MAX];

	identity_fingerprint(identity_public_key(e->id), fp);
	event_system(&e->bus, "hychat %s: %s on peer port %d, key %s", HYCHAT_VERSION, e->username,
	    e->peer_port, fp);
	if (e->password != NULL) {
		engine_emit_tracker(e, "offline", NULL);
		engine_tracker_login(e);
	} else {
		/* Said as the tracker's state, so that a front end with a
		 * prompt of its own can leave the hint out without reading it. */
		char hint[HY_NAME_MAX + 64];
		snprintf(hint, sizeof(hint), "not logged in: login %s PASSWORD", e->username);
		engine_emit_tracker(e, "offline", hint);
	}
}

static void
close_timer(struct engine *e, uv_timer_t *t)
{
	uv_timer_stop(t);
	uv_close((uv_handle_t *)t, on_handle_closed);
}

/* The one teardown of the links and of the tracker session: engine_stop()
 * drops the links at once and the session after the goodbye; engine_free()
 * drops what a failed start or a stop left. */
static void
drop_links(struct engine *e)
{
	if (e->net != NULL)
		p2p_net_free(e->net);
	e->net = NULL;
}

static void
drop_session(struct engine *e)
{
	if (e->tc != NULL)
		tracker_client_free(e->tc);
	e->tc = NULL;
}

/* The last step of stopping: what is left of the tracker session goes. */
static void
finish_stop(struct engine *e)
{
	char *cause = NULL;

	drop_session(e);
	if (!uv_is_closing((uv_handle_t *)&e->grace))
		close_timer(e, &e->grace);
	if (!uv_is_closing((uv_handle_t *)&e->commit)) {
		if (peerdb_commit(e->db, &cause) < 0) {
			log_error("%s", cause);
			free(cause);
		}
		uv_check_stop(&e->commit);
		uv_close((uv_handle_t *)&e->commit, on_handle_closed);
	}
}

static void
on_grace(uv_timer_t *t)
{
	finish_stop(t->data);
}

static void
logged_out(struct engine *e, int status, struct json_object *body, const char *err, const char *arg)
{
	finish_stop(e);
}

void
engine_stop(struct engine *e)
{
	if (e->stopping)
		return;
	e->stopping = 1;
	event_emit(&e->bus, event_new(EVENT_QUIT));
	close_timer(e, &e->heartbeat);
	close_timer(e, &e->relogin);
	close_timer(e, &e->refresh);
	close_timer(e, &e->members_retry);
	engine_mailbox_stop(e);
	engine_backlog_stop(e);
	/* What waits for a commit is stored and acknowledged while the links
	 * can still carry the acks; the acks received are applied first. */
	engine_apply_acks(e);
	uv_close((uv_handle_t *)&e->ack_drain, on_handle_closed);
	commit_now(e);
	close_timer(e, &e->commit_timer);
	if (e->net != NULL)
		p2p_net_flush(e->net);
	drop_links(e);
	engine_file_stop(e);
	close_timer(e, &e->typing_timer);
	close_timer(e, &e->hints);
	if (e->ts == ENGINE_ONLINE) {
		uv_timer_start(&e->grace, on_grace, ENGINE_QUIT_GRACE_MS, 0);
		engine_tracker_call(e, TRACKER_POST, "/logout", NULL, logged_out, NULL);
	} else {
		finish_stop(e);
	}
}

void
engine_quit(struct engine *e)
{
	engine_stop(e);
}

void
engine_free(struct engine *e)
{
	if (e == NULL)
		return;
	if (e->handles != 0)
		log_error("engine: freed with %d handles open", e->handles);
	drop_links(e);
	drop_session(e);
	engine_tracker_free_calls(e);
	engine_free_acks(e);
	engine_presence_free(e);
	engine_settings_free(e);
	engine_typing_free(e);
	engine_mailbox_free(e);
	engine_backlog_free(e);
	engine_file_free(e);
	while (e->channels != NULL) {
		struct engine_channel *c = e->channels;
		e->channels = c->next;
		channel_free(c);
	}
	sendlog_free(e->sendlog);
	contacts_free(e->contacts);
	outbox_free(e->outbox);
	history_free(e->hist);
	peerdb_close(e->db);
	known_peers_close(e->known);
	identity_free(e->id);
	if (e->password != NULL) {
		sodium_memzero(e->password, strlen(e->password));
		free(e->password);
	}
	free(e->last_conv);
	free(e->data_dir);
	free(e->listen_host);
	event_bus_fini(&e->bus);
	free(e);
}

/* Commands that read state. */

static void
add_conversation(const struct history_conv *c, void *arg)
{
	struct json_object *o = json_object_new_object();

	event_add_str(o, "name", c->name);
	event_add_int(o, "unread", c->unread);
	event_add_int(o, "last_seq", c->last_seq);
	json_object_array_add(arg, o);
}

int
engine_conversations(struct engine *e)
{
	struct json_object *ev = event_new(EVENT_CONVERSATION_LIST),
	                   *list = json_object_new_array();

	for (struct engine_channel *c = e->channels; c != NULL; c = c->next) {
		char conv[HY_CHANNEL_MAX + 2];
		snprintf(conv, sizeof(conv), "#%s", c->name);
		history_touch(e->hist, conv);
	}
	if (history_conversations(e->hist, add_conversation, list) < 0) {
		json_object_put(ev);
		json_object_put(list);
		event_error(&e->bus, "conversations: the history cannot be read");
		return -1;
	}
	json_object_object_add(ev, "conversations", list);
	event_emit(&e->bus, ev);
	return 0;
}

struct history_out {
	struct json_object *list;
};

static void
add_history(const struct history_msg *m, void *arg)
{
	static const char *const kinds[] = { "chat", "action", "system" };
	struct json_object *o = json_object_new_object();

	event_add_int(o, "seq", m->seq);
	if (m->id != NULL)
		event_add_str(o, "id", m->id);
	event_add_str(o, "from", m->from);
	event_add_str(o, "message", m->text);
	event_add_str(o, "time", m->time);
	event_add_str(o, "kind", (unsigned)m->kind < HY_ARRAY_LEN(kinds) ? kinds[m->kind] : "chat");
	event_add_bool(o, "outgoing", m->outgoing);
	event_add_bool(o, "encrypted", m->encrypted);
	json_object_array_add(arg, o);
}

/* "#chan", "chan" if joined, or a username, into out. */
static int
conversation_name(struct engine *e, const char *in, char *out, size_t outsz, const char *what)
{
	char chan[HY_CHANNEL_MAX + 1];

	if (in[0] == '#' ||
	    (hy_name_valid(in, strlen(in)) && engine_channel_find(e, in) != NULL &&
	        strlen(in) <= HY_CHANNEL_MAX)) {
		if (engine_channel_name(e, in, chan, what) < 0)
			return -1;
		snprintf(out, outsz, "#%s", chan);
		return 0;
	}
	if (!hy_name_valid(in, strlen(in))) {
		event_error(
		    &e->bus, "%s: \"%.64s\" is neither a #channel nor a username", what, in);
		return -1;
	}
	snprintf(out, outsz, "%s", in);
	return 0;
}

struct history_query {
	int n;
	long long seq;
	const char *text;
};

/* Resolves a history or search request's conversation into conv and its
 * count into q->n (out of range: the default). */
static int
history_target(struct engine *e, const char *conversation, char conv[HY_CHANNEL_MAX + 2],
    struct history_query *q, const char *what)
{
	if (conversation_name(e, conversation, conv, HY_CHANNEL_MAX + 2, what) < 0)
		return -1;
	if (q->n < 1 || q->n > HISTORY_MAX_N)
		q->n = HISTORY_DEFAULT_N;
	return 0;
}

/* A history or search event for conv, the messages from fetch. */
static int
emit_messages(struct engine *e, struct json_object *ev, const char *conv,
    int (*fetch)(struct engine *, const char *, struct json_object *, void *), void *arg)
{
	struct json_object *list = json_object_new_array();

	event_add_str(ev, "conversation", conv);
	if (fetch(e, conv, list, arg) < 0) {
		event_error(&e->bus, "%s: the history cannot be read",
		    json_object_get_string(json_object_object_get(ev, "type")));
		json_object_put(ev);
		json_object_put(list);
		return -1;
	}
	engine_mailbox_annotate(e, conv, list);
	json_object_object_add(ev, "messages", list);
	event_emit(&e->bus, ev);
	return 0;
}

static int
fetch_last(struct engine *e, const char *conv, struct json_object *list, void *arg)
{
	struct history_query *q = arg;

	return history_last(e->hist, conv, q->seq, q->n, add_history, list);
}

static int
fetch_after(struct engine *e, const char *conv, struct json_object *list, void *arg)
{
	struct history_query *q = arg;

	return history_after(e->hist, conv, q->seq, q->n, add_history, list);
}

static int
fetch_hits(struct engine *e, const char *conv, struct json_object *list, void *arg)
{
	struct history_query *q = arg;

	return history_search(e->hist, conv, q->text, q->seq, q->n, add_history, list);
}

int
engine_history(struct engine *e, const char *conversation, int n, long long before)
{
	char conv[HY_CHANNEL_MAX + 2];
	struct history_query q = { n, before, NULL };
	struct json_object *ev;

	if (history_target(e, conversation, conv, &q, "history") < 0)
		return -1;
	ev = event_new(EVENT_HISTORY);
	event_add_int(ev, "unread", history_unread(e->hist, conv));
	return emit_messages(e, ev, conv, fetch_last, &q);
}

int
engine_read(struct engine *e, const char *conversation, long long upto)
{
	char conv[HY_CHANNEL_MAX + 2];
	struct history_query q = { 1, 0, NULL };
	struct json_object *ev;

	if (history_target(e, conversation, conv, &q, "read") < 0)
		return -1;
	if (upto < 0) {
		event_error(&e->bus, "read: UPTO must be a message's seq");
		return -1;
	}
	if (upto == 0 && (upto = history_last_seq(e->hist, conv)) < 0)
		upto = 0;
	if (history_mark_read(e->hist, conv, upto) < 0) {
		event_error(&e->bus, "read: the history cannot be written");
		return -1;
	}
	/* A change of state: every front end hears it, whoever read. */
	ev = event_new(EVENT_READ);
	event_add_str(ev, "conversation", conv);
	event_add_int(ev, "upto", upto);
	event_add_int(ev, "unread", history_unread(e->hist, conv));
	event_emit(&e->bus, ev);
	engine_receipt_send(e, conv, upto);
	return 0;
}

int
engine_history_after(struct engine *e, const char *conversation, int n, long long after)
{
	char conv[HY_CHANNEL_MAX + 2];
	struct history_query q = { n, after, NULL };
	struct json_object *ev;

	if (history_target(e, conversation, conv, &q, "history") < 0)
		return -1;
	ev = event_new(EVENT_HISTORY);
	event_add_int(ev, "after", after);
	return emit_messages(e, ev, conv, fetch_after, &q);
}

int
engine_search(struct engine *e, const char *conversation, const char *text, int n, long long before)
{
	char conv[HY_CHANNEL_MAX + 2];
	struct history_query q = { n, before, text };
	struct json_object *ev;

	if (history_target(e, conversation, conv, &q, "search") < 0)
		return -1;
	if (text[0] == '\0') {
		event_error(&e->bus, "search: nothing to search for");
		return -1;
	}
	ev = event_new(EVENT_SEARCH);
	event_add_str(ev, "query", text);
	event_add_int(ev, "before", before);
	return emit_messages(e, ev, conv, fetch_hits, &q);
}

static void
emit_fingerprint(struct engine *e, const char *user, const uint8_t *key, const char *source)
{
	struct json_object *ev = event_new(EVENT_FINGERPRINT);
	char fp[IDENTITY_FINGERPRINT_MAX];

	event_add_str(ev, "username", user);
	if (key != NULL) {
		identity_fingerprint(key, fp);
		event_add_str(ev, "fingerprint", fp);
	} else {
		json_object_object_add(ev, "fingerprint", NULL);
	}
	event_add_str(ev, "source", source);
	event_add_bool(ev, "self", strcmp(user, e->username) == 0);
	event_emit(&e->bus, ev);
}

static void
fingerprint_looked_up(
    struct engine *e, int status, struct json_object *body, const char *err, const char *user)
{
	uint8_t key[P2P_KEY_MAX];
	size_t len;

	if (status == 200)
		engine_learn_peer(e, body);
	if (e->net != NULL && p2p_net_peer_key(e->net, user, key, &len) == 1 &&
	    len == IDENTITY_PUBLIC_BYTES) {
		emit_fingerprint(e, user, key, "tracker");
		return;
	}
	if (known_peers_lookup(e->known, user, key) == 1) {
		emit_fingerprint(e, user, key, "known_peers");
		return;
	}
	event_error(&e->bus, "fingerprint: no key known for %s", user);
}

int
engine_fingerprint(struct engine *e, const char *user)
{
	if (user == NULL || strcmp(user, e->username) == 0) {
		emit_fingerprint(e, e->username, identity_public_key(e->id), "self");
		return 0;
	}
	if (!hy_name_valid(user, strlen(user))) {
		event_error(&e->bus, "fingerprint: invalid username \"%.64s\"", user);
		return -1;
	}
	char path[sizeof("/peers/") + HY_NAME_MAX];

	snprintf(path, sizeof(path), "/peers/%s", user);
	engine_tracker_call(e, TRACKER_GET, path, NULL, fingerprint_looked_up, user);
	return 0;
}
