/* tracker_accounts.c — registration, login and logout. Argon2id takes
 * about 100 ms and 64 MiB, so it runs on libuv's thread pool and the
 * handler answers from the after-work callback on its own loop; the
 * store's reads and writes around it answer through their callbacks
 * (tracker_call.c). Every attempt passes the login guard first (login_guard.h): 429 when the
 * client's buckets are empty, 503 when the queue of hashes is full. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/log.h"
#include "tracker_internal.h"

#define TRACKER_IP_TEXT 64 /* an address as http_conn_remote() writes it */

_Static_assert(STORE_HASH_MAX >= crypto_pwhash_STRBYTES, "STORE_HASH_MAX must hold a hash string");

struct hash_job {
	uv_work_t work;
	struct tracker_call *call;
	struct tracker *t;
	uv_loop_t *loop; /* where the hash was queued */
	struct hash_job *prev, *next; /* in t->jobs while queued */
	int registering;
	int admitted; /* the guard let it in: login_guard_end() is owed */
	int found; /* login: the user exists */
	int ok;
	enum login_guard_outcome outcome;
	char user[HY_NAME_MAX + 1];
	char ip[TRACKER_IP_TEXT];
	char hash[STORE_HASH_MAX];
	size_t pwlen;
	char password[TRACKER_PASSWORD_MAX];
};

/* Set once at start, before any worker runs. */
static int kdf_min;

void
tracker_set_kdf_min(int on)
{
	kdf_min = on;
}

int
tracker_hash_password(const char *password, size_t len, char *out)
{
	return crypto_pwhash_str(out, password, len,
	    kdf_min ? crypto_pwhash_OPSLIMIT_MIN : crypto_pwhash_OPSLIMIT_INTERACTIVE,
	    kdf_min ? crypto_pwhash_MEMLIMIT_MIN : crypto_pwhash_MEMLIMIT_INTERACTIVE);
}

static void
hash_work(uv_work_t *w)
{
	struct hash_job *j = w->data;

	if (j->registering) {
		j->ok = tracker_hash_password(j->password, j->pwlen, j->hash) == 0;
	} else {
		const char *h = j->found ? j->hash : j->t->dummy_hash;
		j->ok = crypto_pwhash_str_verify(h, j->password, j->pwlen) == 0 && j->found;
	}
	sodium_memzero(j->password, sizeof(j->password));
}

/* Ends the guard's count for an admitted job, wipes and frees it (the
 * password too, in case the work never ran). */
static void
job_free(void *arg)
{
	struct hash_job *j = arg;

	if (j->admitted)
		login_guard_end(j->t->guard, j->ip, j->user, j->outcome, hy_now_ms());
	sodium_memzero(j, sizeof(*j));
	free(j);
}

/* Answers from the last store operation's failure, if any. */
static int
job_failed(struct tracker_call *c)
{
	struct hash_job *j = c->data;

	j->outcome = LOGIN_GUARD_VOID;
	return tracker_call_failed(c);
}

static void
register_added(struct tracker_call *c)
{
	struct hash_job *j = c->data;

	if (job_failed(c))
		return;
	if (c->sc.result == STORE_TAKEN) {
		j->outcome = LOGIN_GUARD_FAILURE;
		http_json_error(c->res, 409, "Username taken");
	} else {
		struct json_object *o = tracker_success();
		tracker_add_str(o, "username", j->user);
		http_json_respond(c->res, 201, o);
		j->outcome = LOGIN_GUARD_SUCCESS;
	}
	tracker_call_end(c);
}

static void
login_issued(struct tracker_call *c)
{
	struct hash_job *j = c->data;
	struct tracker *t = c->t;

	if (job_failed(c))
		return;
	struct json_object *o = tracker_success();
	tracker_add_str(o, "token", c->sc.token);
	tracker_add_str(o, "username", j->user);
	tracker_add_int(o, "expires_in", (int64_t)(t->cfg.token_ttl_ms / 1000));
	tracker_mailbox_hint(t, j->user, &c->sc, o);
	http_json_respond(c->res, 200, o);
	http_response_header(c->res, "Cache-Control", "no-store");
	sodium_memzero(c->sc.token, sizeof(c->sc.token));
	j->outcome = LOGIN_GUARD_SUCCESS;
	tracker_call_end(c);
}

static void
jobs_link(struct hash_job *j)
{
	struct tracker *t = j->t;

	uv_mutex_lock(&t->jobs_lock);
	j->prev = NULL;
	j->next = t->jobs;
	if (t->jobs != NULL)
		t->jobs->prev = j;
	t->jobs = j;
	uv_mutex_unlock(&t->jobs_lock);
}

static void
jobs_unlink(struct hash_job *j)
{
	struct tracker *t = j->t;

	uv_mutex_lock(&t->jobs_lock);
	if (j->prev != NULL)
		j->prev->next = j->next;
	else
		t->jobs = j->next;
	if (j->next != NULL)
		j->next->prev = j->prev;
	uv_mutex_unlock(&t->jobs_lock);
}

void
tracker_cancel_jobs(struct tracker *t, uv_loop_t *loop)
{
	uv_mutex_lock(&t->jobs_lock);
	for (struct hash_job *j = t->jobs; j != NULL; j = j->next)
		if (j->loop == loop)
			uv_cancel((uv_req_t *)&j->work); /* UV_EBUSY if running: it ends soon */
	uv_mutex_unlock(&t->jobs_lock);
}

static void
hash_done(uv_work_t *w, int status)
{
	struct hash_job *j = w->data;
	struct tracker_call *c = j->call;

	jobs_unlink(j);
	if (status < 0) {
		http_json_error(c->res, 503, "Shutting down");
		tracker_call_end(c);
	} else if (j->registering && !j->ok) {
		http_json_error(c->res, 500, "Cannot hash the password");
		tracker_call_end(c);
	} else if (j->registering) {
		snprintf(c->sc.user, sizeof(c->sc.user), "%s", j->user);
		memcpy(c->sc.hash, j->hash, sizeof(c->sc.hash));
		tracker_call_store(c, c->t->state->ops->account_add, register_added);
	} else if (!j->ok) {
		j->outcome = LOGIN_GUARD_FAILURE;
		http_json_error(c->res, 401, "Invalid credentials");
		tracker_call_end(c);
	} else {
		snprintf(c->sc.user, sizeof(c->sc.user), "%s", j->user);
		c->sc.ttl_ms = c->t->cfg.token_ttl_ms;
		tracker_call_store(c, c->t->state->ops->token_issue, login_issued);
	}
}

/* Admits the attempt through the guard; -1 after a 429 or a 503 with
 * Retry-After. */
static int
job_admit(struct tracker *t, struct hash_job *j, struct http_response *res)
{
	static const char *const refusals[] = {
		[0] = "Too many attempts from this address or for this account; retry later",
		[1] = "Too many logins at once; retry",
	};
	unsigned retry = 0;

	enum login_guard_verdict v =
	    login_guard_begin(t->guard, j->ip, j->user, hy_now_ms(), &retry);
	if (v == LOGIN_GUARD_OK) {
		j->admitted = 1;
		j->outcome = LOGIN_GUARD_VOID;
		return 0;
	}
	http_json_error(res, (int)v, refusals[v == LOGIN_GUARD_BUSY]);
	http_response_headerf(res, "Retry-After", "%u", retry);
	return -1;
}

/* Queues the job's hash on the thread pool; hash_done goes on. */
static void
hash_queue(struct tracker_call *c)
{
	struct hash_job *j = c->data;

	j->work.data = j;
	if (c->req->conn == NULL) {
		http_json_error(c->res, 500, "Cannot queue work");
		tracker_call_end(c);
		return;
	}
	j->loop = http_conn_loop(c->req->conn);
	jobs_link(j);
	int rc = uv_queue_work(j->loop, &j->work, hash_work, hash_done);
	if (rc < 0) {
		jobs_unlink(j);
		log_error("uv_queue_work: %s", uv_strerror(rc));
		http_json_error(c->res, 500, "Cannot queue work");
		tracker_call_end(c);
	}
}

/* Copies the credentials and the client's address into a new job; NULL
 * after a 400. */
static struct hash_job *
credentials(const struct http_request *req, struct http_response *res)
{
	struct json_object *o = http_json_body(req, res);
	const char *user, *pw;
	size_t pwlen;

	if (o == NULL)
		return NULL;
	if (tracker_field_username(o, &user, res) < 0 ||
	    tracker_field_password(o, &pw, &pwlen, res) < 0) {
		json_object_put(o);
		return NULL;
	}
	struct hash_job *j = xcalloc(1, sizeof(*j));
	snprintf(j->user, sizeof(j->user), "%s", user);
	snprintf(j->ip, sizeof(j->ip), "%s", req->conn != NULL ? http_conn_remote(req->conn) : "-");
	memcpy(j->password, pw, pwlen);
	j->pwlen = pwlen;
	json_object_put(o);
	return j;
}

/* Register: the name is looked up first, to spare the 100 ms hash when it
 * is plainly taken; the insert still decides a race. */
static void
register_looked_up(struct tracker_call *c)
{
	struct hash_job *j = c->data;

	if (job_failed(c))
		return;
	if (c->sc.result == STORE_DONE) {
		j->outcome = LOGIN_GUARD_FAILURE;
		http_json_error(c->res, 409, "Username taken");
		tracker_call_end(c);
		return;
	}
	j->registering = 1;
	hash_queue(c);
}

static void
login_looked_up(struct tracker_call *c)
{
	struct hash_job *j = c->data;

	if (job_failed(c))
		return;
	j->found = c->sc.result == STORE_DONE;
	if (j->found)
		memcpy(j->hash, c->sc.hash, sizeof(j->hash));
	sodium_memzero(c->sc.hash, sizeof(c->sc.hash));
	hash_queue(c);
}

static void
lookup_register(struct tracker_call *c)
{
	tracker_call_store(c, c->t->state->ops->account_hash, register_looked_up);
}

static void
lookup_login(struct tracker_call *c)
{
	tracker_call_store(c, c->t->state->ops->account_hash, login_looked_up);
}

/* Checks the credentials, admits the job and runs first on a new call. */
static void
account_call(struct tracker *t, struct http_request *req, struct http_response *res,
    void (*first)(struct tracker_call *c))
{
	struct hash_job *j = credentials(req, res);

	if (j == NULL)
		return;
	j->t = t;
	if (job_admit(t, j, res) < 0) {
		job_free(j);
		return;
	}
	struct tracker_call *c = tracker_call_new(t, req, res);
	c->data = j;
	c->data_free = job_free;
	j->call = c;
	snprintf(c->sc.user, sizeof(c->sc.user), "%s", j->user);
	tracker_call_start(c, first);
}

void
tracker_api_register(struct http_request *req, struct http_response *res, void *ctx)
{
	struct tracker *t = ctx;

	if (t->cfg.no_register) {
		http_json_error(res, 403, "Registration is closed");
		return;
	}
	account_call(t, req, res, lookup_register);
}

void
tracker_api_login(struct http_request *req, struct http_response *res, void *ctx)
{
	account_call(ctx, req, res, lookup_login);
}

static void
logout_done(struct tracker_call *c)
{
	if (tracker_call_failed(c))
		return;
	if (c->sc.result == STORE_MISSING) {
		http_json_error(c->res, 401, "Invalid or expired token");
	} else {
		/* Where the store keeps the hints, its revoke dropped them. */
		if (c->t->state->ops->hint_add == NULL)
			tracker_nat_forget(c->t->nat, c->user);
		http_json_respond(c->res, 200, tracker_success());
	}
	tracker_call_end(c);
}

static void
logout_authed(struct tracker_call *c)
{
	struct json_object *o = tracker_body_for(c->req, c->res, c->user);

	if (o == NULL) {
		tracker_call_end(c);
		return;
	}
	json_object_put(o);
	snprintf(c->sc.user, sizeof(c->sc.user), "%s", c->user);
	tracker_call_store(c, c->t->state->ops->token_revoke, logout_done);
}

void
tracker_api_logout(struct http_request *req, struct http_response *res, void *ctx)
{
	tracker_call_run(ctx, req, res, logout_authed);
}
