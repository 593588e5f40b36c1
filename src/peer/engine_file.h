/* engine_file.h — what engine_file.c (a transfer's state machine, frames,
 * jobs and commands) and engine_file_db.c (its row in the database) share.
 * Not part of any interface: front ends use engine.h. */
#ifndef HYCHAT_ENGINE_FILE_H
#define HYCHAT_ENGINE_FILE_H

#include <stdint.h>

#include <sodium.h>

#include "engine_internal.h"
#include "hychat/file_frame.h"
#include "hychat/file_io.h"

/* The sender keeps at most a window of bytes ahead of the receiver's ack,
 * sized by delay: a chunk acked later than FILE_DELAY_TARGET_MS after it
 * was sent means bytes queue somewhere between the two (and a chat
 * message waits behind them), so the window shrinks; otherwise it grows
 * by a chunk, up to FILE_WINDOW. The receiver refuses chunks beyond
 * FILE_WINDOW. */
#define FILE_WINDOW (2 * 1024 * 1024)
#define FILE_WINDOW_MIN (512 * 1024)
#define FILE_WINDOW_START (1024 * 1024)
#define FILE_DELAY_TARGET_MS 20
#define FILE_RING (FILE_WINDOW / FILE_FRAME_CHUNK_MAX + 2) /* chunks in flight */
#define FILE_SYNC_EVERY (1024 * 1024) /* the receiver syncs and records this often */
/* The receiver acknowledges a chunk as it takes it off the link (so the
 * sender's delay is the link's, not the disk's), while it holds no more
 * than this not yet written and hashed; past it, acks wait for the disk
 * and the hash. */
#define FILE_RECV_QUEUE (1024 * 1024)
/* The receiver hands the disk and the hash batches of this much (less
 * when both are idle): fewer, larger jobs. */
#define FILE_BATCH (512 * 1024)
/* Batches kept for their capacity: as many as can be in flight, so that
 * none is allocated (mapped, faulted in) per batch. */
#define FILE_SPARES ((FILE_WINDOW + FILE_RECV_QUEUE) / FILE_BATCH + 2)
#define FILE_READ_BATCH (1024 * 1024) /* the sender reads this much at once */
#define FILE_RATE_MS 1000 /* the rate is over about this long */

#define XFER_STATES(X) \
	X(XFER_OFFERED, "offered") \
	X(XFER_ACCEPTED, "accepted") \
	X(XFER_SENDING, "sending") \
	X(XFER_RECEIVING, "receiving") \
	X(XFER_PAUSED, "paused") \
	X(XFER_VERIFYING, "verifying") \
	X(XFER_DONE, "done") \
	X(XFER_FAILED, "failed") \
	X(XFER_REJECTED, "rejected") \
	X(XFER_CANCELLED, "cancelled")

#define XFER_ENUM(e, name) e,
enum xfer_state {
	XFER_STATES(XFER_ENUM) XFER_STATE_COUNT
};
#undef XFER_ENUM

/* Each state's name, on the wire of the events and in the database. */
extern const char *const engine_file_state_names[XFER_STATE_COUNT];

/* Bytes received on their way to the disk and the hash: the write lane
 * writes the batches and the hash lane hashes them, each in order, beside
 * each other on the thread pool; a batch leaves the queue once both are
 * done with it, and is kept as a spare. */
struct file_batch {
	struct file_batch *next;
	struct buf data;
	uint64_t off;
	int written, hashed;
};

struct engine_xfer {
	struct engine *e;
	char id[ENGINE_FILE_ID_HEX + 1];
	uint8_t idb[FILE_FRAME_ID_BYTES];
	char peer[HY_NAME_MAX + 1];
	int out; /* we send */
	char *name; /* as offered (checked, for an incoming one) */
	char *path; /* out: the file; in: where it lands (the target, then the final name) */
	char *part; /* in: the .part */
	uint64_t size;
	int64_t mtime_ns; /* out: when it was hashed */
	uint8_t hash[FILE_IO_HASH_BYTES];
	char hash_hex[2 * FILE_IO_HASH_BYTES + 1];
	enum xfer_state state;
	char *error;
	int fd; /* the file sent, or the .part */
	int busy; /* a job on the thread pool (the receiver's write lane) */
	int syncing; /* a JOB_SYNC on the thread pool, beside it */
	int hashing; /* a receiver's JOB_HASH_UPDATE on the thread pool, beside them */
	unsigned gen;
	int cleaned; /* a final state's cleanup done */

	/* Progress. */
	uint64_t bytes; /* out: acknowledged; in: written and hashed (as far as hs_ok) */
	uint64_t last_emit_ms, rate_ms, rate_bytes, rate;

	/* Sender. */
	int checked; /* the file was hashed in this run and matched */
	int need_check; /* hash it again before sending */
	int offer_sent; /* on this link */
	uint64_t send_off; /* the next offset to send */
	uint64_t window;
	uint64_t shrunk_ms; /* the window shrinks at most once a delay target */
	uint64_t ring_end[FILE_RING], ring_ms[FILE_RING]; /* chunks in flight: end, when sent */
	unsigned ring_head, ring_n;
	struct buf rbuf; /* read ahead, from rbuf_off */
	/* Buffers of the jobs, kept for their capacity: a megabyte allocated
	 * and freed per batch costs an mmap, a munmap and its TLB shootdown,
	 * which held transfers to 30 MB/s. */
	struct buf rspare;
	struct buf fbuf; /* the chunk frame being built */
	uint64_t rbuf_off;

	/* Receiver. */
	int need_open; /* open the .part (again) before resuming */
	int want_resume; /* send ACCEPT from what is written, when idle */
	int need_sync;
	struct file_batch *open; /* being filled, from q_off */
	uint64_t q_off;
	uint64_t written, hashed; /* the lanes' ends; bytes is the lesser */
	struct file_batch *bq, **bq_tail; /* handed to the lanes, in order */
	struct file_batch *wnext, *hnext; /* each lane's next batch in bq */
	struct file_batch *spares;
	int nspares;
	uint64_t expect; /* the next chunk's offset */
	uint64_t synced;
	uint64_t acked_out; /* the last ACK sent */
	crypto_generichash_state hs;
	int hs_ok; /* hs has seen [0, bytes) */
	char *dest; /* accept's PATH */

	struct engine_xfer *next;
};

/* A transfer's state is final. */
static inline int
engine_file_terminal(enum xfer_state s)
{
	return s == XFER_DONE || s == XFER_FAILED || s == XFER_REJECTED || s == XFER_CANCELLED;
}

/* A new transfer of e with peer (out: we send), at the head of e's list. */
struct engine_xfer *engine_file_xfer_new(struct engine *e, const char *peer, int out);
void engine_file_set_id(struct engine_xfer *x, const uint8_t id[FILE_FRAME_ID_BYTES]);

/* engine_file_db.c */
/* Writes x's row (INSERT OR REPLACE), in the loop turn's transaction. */
void engine_file_save(struct engine_xfer *x);
/* Makes the table and loads the transfers of earlier runs: those under way
 * wait, paused, for their peer's link. -1 with *cause. */
int engine_file_load(struct engine *e, char **cause);

#endif
