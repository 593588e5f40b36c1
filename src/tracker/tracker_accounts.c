/* tracker_accounts.c — registration, login and logout. Argon2id takes
 * about 100 ms and 64 MiB, so it runs on libuv's thread pool and the
 * handler answers from the after-work callback on its own loop. Every
 * attempt passes the login guard first (login_guard.h): 429 when the
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
	struct tracker *t;
	uv_loop_t *loop;
	struct hash_job *prev, *next; /* in t->jobs */
	struct http_conn *conn;
	int registering;
	int found; /* login: the user exists */
	int ok;
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

static enum login_guard_outcome
register_done(struct hash_job *j, struct http_response *res)
{
	char *cause = NULL;

	if (!j->ok) {
		http_json_error(res, 500, "Cannot hash the password");
		return LOGIN_GUARD_VOID;
	}
	int rc = j->t->store->ops->user_add(j->t->store, j->user, j->hash, &cause);
	if (rc == STORE_EXISTS) {
		http_json_error(res, 409, "Username taken");
		return LOGIN_GUARD_FAILURE;
	}
	if (rc < 0) {
		tracker_store_failed(res, cause);
		return LOGIN_GUARD_VOID;
	}
	struct json_object *o = tracker_success();
	tracker_add_str(o, "username", j->user);
	http_json_respond(res, 201, o);
	return LOGIN_GUARD_SUCCESS;
}

static enum login_guard_outcome
login_done(struct hash_job *j, struct http_response *res)
{
	char token[REG_TOKEN_TEXT_SIZE];
	struct tracker *t = j->t;

	if (!j->ok) {
		http_json_error(res, 401, "Invalid credentials");
		return LOGIN_GUARD_FAILURE;
	}
	tracker_wr_lock(t);
	registry_token_issue(t->reg, j->user, hy_now_ms() + t->cfg.token_ttl_ms, token);
	tracker_unlock(t);
	struct json_object *o = tracker_success();
	tracker_add_str(o, "token", token);
	tracker_add_str(o, "username", j->user);
	tracker_add_int(o, "expires_in", (int64_t)(t->cfg.token_ttl_ms / 1000));
	tracker_mailbox_hint(t, j->user, o);
	http_json_respond(res, 200, o);
	http_response_header(res, "Cache-Control", "no-store");
	sodium_memzero(token, sizeof(token));
	return LOGIN_GUARD_SUCCESS;
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
	struct http_response res;
	enum login_guard_outcome outcome = LOGIN_GUARD_VOID;

	jobs_unlink(j);
	http_response_init(&res);
	if (status < 0)
		http_json_error(&res, 503, "Shutting down");
	else if (j->registering)
		outcome = register_done(j, &res);
	else
		outcome = login_done(j, &res);
	http_conn_respond(j->conn, &res);
	http_response_fini(&res);
	http_conn_unref(j->conn);
	login_guard_end(j->t->guard, j->ip, j->user, outcome, hy_now_ms());
	/* the password too, in case the work never ran */
	sodium_memzero(j, sizeof(*j));
	free(j);
}

/* Frees a job that was admitted by the guard but never queued. */
static void
job_drop(struct hash_job *j, enum login_guard_outcome outcome)
{
	login_guard_end(j->t->guard, j->ip, j->user, outcome, hy_now_ms());
	sodium_memzero(j, sizeof(*j));
	free(j);
}

/* Admits the attempt through the guard; -1 (job freed) after a 429 or a
 * 503 with Retry-After. */
static int
job_admit(struct tracker *t, struct hash_job *j, struct http_response *res)
{
	static const char *const refusals[] = {
		[0] = "Too many attempts from this address or for this account; retry later",
		[1] = "Too many logins at once; retry",
	};
	unsigned retry = 0;

	j->t = t;
	enum login_guard_verdict v =
	    login_guard_begin(t->guard, j->ip, j->user, hy_now_ms(), &retry);
	if (v == LOGIN_GUARD_OK)
		return 0;
	sodium_memzero(j, sizeof(*j));
	free(j);
	http_json_error(res, (int)v, refusals[v == LOGIN_GUARD_BUSY]);
	http_response_headerf(res, "Retry-After", "%u", retry);
	return -1;
}

/* Queues an admitted job. */
static void
hash_queue(
    struct tracker *t, struct hash_job *j, struct http_request *req, struct http_response *res)
{
	j->work.data = j;
	j->conn = http_conn_ref(req->conn);
	j->loop = http_conn_loop(req->conn);
	jobs_link(j);
	int rc = uv_queue_work(j->loop, &j->work, hash_work, hash_done);
	if (rc < 0) {
		jobs_unlink(j);
		http_conn_unref(j->conn);
		job_drop(j, LOGIN_GUARD_VOID);
		log_error("uv_queue_work: %s", uv_strerror(rc));
		http_json_error(res, 500, "Cannot queue work");
		return;
	}
	res->deferred = 1;
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

void
tracker_api_register(struct http_request *req, struct http_response *res, void *ctx)
{
	struct tracker *t = ctx;
	struct hash_job *j;
	char *cause = NULL;

	if (t->cfg.no_register) {
		http_json_error(res, 403, "Registration is closed");
		return;
	}
	if ((j = credentials(req, res)) == NULL || job_admit(t, j, res) < 0)
		return;
	/* Spare the 100 ms hash when the name is plainly taken; the insert
	 * still decides a race. */
	int found = t->store->ops->user_hash(t->store, j->user, j->hash, &cause);
	if (found != 0) {
		job_drop(j, found < 0 ? LOGIN_GUARD_VOID : LOGIN_GUARD_FAILURE);
		if (found < 0)
			tracker_store_failed(res, cause);
		else
			http_json_error(res, 409, "Username taken");
		return;
	}
	j->registering = 1;
	hash_queue(t, j, req, res);
}

void
tracker_api_login(struct http_request *req, struct http_response *res, void *ctx)
{
	struct tracker *t = ctx;
	struct hash_job *j;
	char *cause = NULL;

	if ((j = credentials(req, res)) == NULL || job_admit(t, j, res) < 0)
		return;
	j->found = t->store->ops->user_hash(t->store, j->user, j->hash, &cause);
	if (j->found < 0) {
		job_drop(j, LOGIN_GUARD_VOID);
		tracker_store_failed(res, cause);
		return;
	}
	hash_queue(t, j, req, res);
}

void
tracker_api_logout(struct http_request *req, struct http_response *res, void *ctx)
{
	struct tracker *t = ctx;
	char user[HY_NAME_MAX + 1];
	const char *token;
	size_t token_len;
	struct json_object *o;

	if (tracker_auth(t, req, res, user, &token, &token_len) < 0 ||
	    (o = tracker_body_for(req, res, user)) == NULL)
		return;
	json_object_put(o);
	tracker_wr_lock(t);
	int rc = registry_token_revoke(t->reg, token, token_len, hy_now_ms());
	if (rc == 0)
		registry_peer_drop(t->reg, user);
	tracker_unlock(t);
	if (rc < 0)
		http_json_error(res, 401, "Invalid or expired token");
	else
		http_json_respond(res, 200, tracker_success());
}
