/* test_p2p_net.c — how a peer behind a NAT is reached, and what a
 * rendezvous the tracker refuses changes: we are reachable, so the
 * tracker is asked to have the peer dial us back; the peer gone offline
 * meanwhile (a 404) is no sign against that way, which is asked again;
 * a way that cannot be had (no relay, say) makes the next one the other.
 * A real p2p_net on a loop, its timers run; the tracker is this file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>
#include <uv.h>

#include "hychat/identity.h"
#include "hychat/p2p_net.h"

#define BOB_LAN "10.1.0.2" /* bob's registered address, behind his NAT */
#define BOB_WAN "198.51.100.2" /* where the tracker sees him */
#define WAIT_MS 5000 /* a retry is due in P2P_BACKOFF_MIN_MS, jitter included */

struct fx {
	uv_loop_t loop;
	char dir[64], key[128], known_path[128];
	struct identity *id;
	struct known_peers *known;
	struct p2p_net *n;
	uint8_t bob_key[32];
	char vias[8][16]; /* the rendezvous asked, in order */
	int nvias;
	int lookups;
	uv_timer_t answer, guard;
};

static void
nop_up(void *arg, const char *user, int encrypted)
{
	(void)arg, (void)user, (void)encrypted;
}

static void
nop_down(void *arg, const char *user, const char *reason)
{
	(void)arg, (void)user, (void)reason;
}

static void
nop_message(void *arg, const char *user, int encrypted, struct json_object *msg)
{
	(void)arg, (void)user, (void)encrypted, (void)msg;
}

static void
nop_refused(void *arg, const char *who, const char *reason)
{
	(void)arg, (void)who, (void)reason;
}

/* The tracker's answer about bob: online, behind his NAT. */
static void
tell_bob(struct fx *f)
{
	p2p_net_set_peer(f->n, "bob", BOB_LAN, 9000, f->bob_key, sizeof(f->bob_key));
	p2p_net_set_observed(f->n, "bob", BOB_WAN);
}

static void
on_answer(uv_timer_t *t)
{
	struct fx *f = t->data;

	tell_bob(f);
	p2p_net_lookup_done(f->n, "bob", 1);
}

/* A lookup is answered from the loop, as the engine's is. */
static void
on_lookup(void *arg, const char *user)
{
	struct fx *f = arg;

	assert_string_equal(user, "bob");
	f->lookups++;
	uv_timer_start(&f->answer, on_answer, 0, 0);
}

static void
on_rendezvous(void *arg, const char *user, const char *via, int port)
{
	struct fx *f = arg;

	(void)port;
	assert_string_equal(user, "bob");
	assert_true(f->nvias < 8);
	snprintf(f->vias[f->nvias++], sizeof(f->vias[0]), "%s", via);
	uv_stop(&f->loop);
}

static const struct p2p_net_ops ops = {
	.up = nop_up,
	.down = nop_down,
	.message = nop_message,
	.lookup = on_lookup,
	.refused = nop_refused,
	.rendezvous = on_rendezvous,
};

static void
on_guard(uv_timer_t *t)
{
	uv_stop(t->loop);
}

/* Runs the loop until the next rendezvous is asked, or WAIT_MS. */
static void
run_until_rendezvous(struct fx *f)
{
	int before = f->nvias;

	uv_timer_start(&f->guard, on_guard, WAIT_MS, 0);
	while (f->nvias == before && uv_timer_get_due_in(&f->guard) > 0)
		uv_run(&f->loop, UV_RUN_ONCE);
	uv_timer_stop(&f->guard);
	assert_int_equal(f->nvias, before + 1);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char *cause = NULL;

	if (f == NULL || sodium_init() < 0)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/hychat-test-p2p-net-XXXXXX");
	if (mkdtemp(f->dir) == NULL)
		return -1;
	snprintf(f->key, sizeof(f->key), "%s/%s", f->dir, IDENTITY_FILE);
	snprintf(f->known_path, sizeof(f->known_path), "%s/%s", f->dir, KNOWN_PEERS_FILE);
	if ((f->id = identity_load(f->key, &cause)) == NULL ||
	    (f->known = known_peers_open(f->known_path, &cause)) == NULL) {
		fprintf(stderr, "setup: %s\n", cause);
		free(cause);
		return -1;
	}
	randombytes_buf(f->bob_key, sizeof(f->bob_key));
	uv_loop_init(&f->loop);
	uv_timer_init(&f->loop, &f->answer);
	uv_timer_init(&f->loop, &f->guard);
	f->answer.data = f;
	struct p2p_net_config cfg = {
		.username = "alice", .host = "127.0.0.1", .port = 0, .id = f->id, .known = f->known
	};
	if ((f->n = p2p_net_new(&f->loop, &cfg, &ops, f, &cause)) == NULL) {
		fprintf(stderr, "setup: %s\n", cause);
		free(cause);
		return -1;
	}
	/* Nothing in front of us: the tracker sees us at our own address. */
	p2p_net_set_self(f->n, "127.0.0.1", "127.0.0.1");
	tell_bob(f);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;

	p2p_net_free(f->n);
	uv_close((uv_handle_t *)&f->answer, NULL);
	uv_close((uv_handle_t *)&f->guard, NULL);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	known_peers_close(f->known);
	identity_free(f->id);
	unlink(f->key);
	unlink(f->known_path);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Reachable, so bob (behind his NAT) is asked to dial us back; the
 * tracker says he went offline before it could ask him: when he is
 * looked up again, it is a dial back that is asked again, not a
 * simultaneous open (which would be a "punched" link where a direct
 * one would do), however long the wait was. */
static void
test_a_peer_offline_keeps_the_way(void **state)
{
	struct fx *f = *state;

	assert_int_equal(p2p_net_dial(f->n, "bob", 1), 0);
	assert_int_equal(f->nvias, 1);
	assert_string_equal(f->vias[0], "dial");
	for (int i = 1; i <= 3; i++) {
		p2p_net_rendezvous_failed(f->n, "bob", 0);
		run_until_rendezvous(f);
		assert_string_equal(f->vias[i], "dial");
	}
	assert_true(f->lookups >= 3); /* the address asked again each time */
}

/* The way asked cannot be had: the next rendezvous is the other one. */
static void
test_a_way_refused_takes_the_other(void **state)
{
	struct fx *f = *state;

	assert_int_equal(p2p_net_dial(f->n, "bob", 1), 0);
	assert_string_equal(f->vias[0], "dial");
	p2p_net_rendezvous_failed(f->n, "bob", 1);
	run_until_rendezvous(f);
	assert_string_equal(f->vias[1], "punch");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_a_peer_offline_keeps_the_way, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_a_way_refused_takes_the_other, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
