/* login_guard.h — who may spend a password hash now: the throttle in
 * front of every Argon2id check of the tracker (/login, /register) and of
 * hychat-httpd (POST /login).
 *
 * The design, as fail2ban and nginx's limit_req users expect it:
 *  - per client address (IPv4, or IPv6 by /64): a bucket charged for every
 *    attempt before it is hashed, so a flood is cut at the burst before it
 *    costs anything; an attempt that succeeds gets its token back, so only
 *    failures use the bucket up, and a client that knows its passwords is
 *    never slowed;
 *  - per account from one address: the same, for one account name from
 *    one address, so guessing one account from one address is slow;
 *  - per account name, from every address: the same, against guessing
 *    spread over many addresses. An address that has logged in to the
 *    account before (remembered while its slot lasts) skips this bucket,
 *    so an attacker who empties it locks out only addresses the account
 *    was never used from, and only for as long as the guessing goes on;
 *  - jobs in flight: at most jobs_per_addr hashes queued for one address
 *    and max_jobs in all, so one address cannot fill the queue that every
 *    other client's login waits in. Both are "busy, retry in a second"
 *    (503), not a throttle: a client that logs in many accounts at once
 *    (a NAT, a test) waits its turn and loses nothing.
 * A refused attempt costs the client nothing: the tokens it took in the
 * earlier checks are given back. Tables are of fixed size (slots buckets
 * each); memory does not grow with the number of attackers.
 */
#ifndef HYCHAT_LOGIN_GUARD_H
#define HYCHAT_LOGIN_GUARD_H

#include <stddef.h>
#include <stdint.h>

#define LOGIN_GUARD_SLOTS 8192 /* buckets per table */
#define LOGIN_GUARD_BUSY_RETRY_S 1 /* Retry-After of a full queue */

/* The settings, as an X-macro: field, command-line flag, default, the
 * smallest and the largest value, help. Rates are tokens a minute; a
 * burst of 0 turns that bucket off. */
#define LOGIN_GUARD_OPTIONS(X) \
	X(addr_rate, "login-addr-rate", 30, 0, 1000000, "attempts a minute per address") \
	X(addr_burst, "login-addr-burst", 20, 0, 1000000, "attempts at once per address") \
	X(pair_rate, "login-pair-rate", 5, 0, 1000000, \
	    "failures a minute per account and address") \
	X(pair_burst, "login-pair-burst", 5, 0, 1000000, \
	    "failures at once per account and address") \
	X(account_rate, "login-account-rate", 10, 0, 1000000, "failures a minute per account") \
	X(account_burst, "login-account-burst", 30, 0, 1000000, "failures at once per account") \
	X(jobs_per_addr, "max-hash-jobs-per-addr", 2, 1, 1000000, "hashes queued per address") \
	X(max_jobs, "max-hash-jobs", 64, 1, 1000000, "hashes queued in all")

struct login_guard_config {
#define LOGIN_GUARD_FIELD(field, flag, def, min, max, help) unsigned field;
	LOGIN_GUARD_OPTIONS(LOGIN_GUARD_FIELD)
#undef LOGIN_GUARD_FIELD
};

/* What login_guard_begin() decided. */
enum login_guard_verdict {
	LOGIN_GUARD_OK = 0,
	LOGIN_GUARD_THROTTLED = 429, /* a bucket is empty */
	LOGIN_GUARD_BUSY = 503, /* the address's jobs, or max_jobs in all */
};

struct login_guard;

void login_guard_defaults(struct login_guard_config *cfg);
/* Sets the setting of a flag (without "--") from text; returns 1 if the
 * flag is one of LOGIN_GUARD_OPTIONS, 0 if not, -1 with *cause set
 * (allocated) if the value is no number from its minimum to its maximum. */
int login_guard_option(
    struct login_guard_config *cfg, const char *flag, const char *value, char **cause);

struct login_guard *login_guard_new(const struct login_guard_config *cfg);
void login_guard_free(struct login_guard *g);

/* Admits an attempt for account user from address ip (text) at now. On
 * LOGIN_GUARD_OK the caller owes exactly one login_guard_end(); otherwise
 * *retry_s says when to try again. */
enum login_guard_verdict login_guard_begin(
    struct login_guard *g, const char *ip, const char *user, uint64_t now, unsigned *retry_s);
/* How an admitted attempt ended. */
enum login_guard_outcome {
	LOGIN_GUARD_FAILURE, /* wrong password, name taken: the tokens stay spent */
	LOGIN_GUARD_SUCCESS, /* right password, account made: tokens back, and
	                        the address is remembered for the account */
	LOGIN_GUARD_VOID, /* the server failed: tokens back */
};

/* Ends an admitted attempt. */
void login_guard_end(struct login_guard *g, const char *ip, const char *user,
    enum login_guard_outcome outcome, uint64_t now);
/* Hashes queued in all. */
unsigned login_guard_jobs(const struct login_guard *g);

#endif
