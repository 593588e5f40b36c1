/* headless.h — the line-protocol front end: command lines on standard
 * input, every event as one JSON object per line on standard output.
 *
 * End of input stops the engine. Output is written without blocking the
 * loop. A reader more than HEADLESS_OUT_HIGH bytes behind is paced: no
 * more commands are read until it is back under HEADLESS_OUT_LOW. If it
 * still falls more than HEADLESS_OUT_MAX bytes behind (events no command
 * caused, such as incoming messages), the front end gives up and stops
 * the engine rather than grow.
 */
#ifndef HYCHAT_HEADLESS_H
#define HYCHAT_HEADLESS_H

#include <uv.h>

#include "hychat/engine.h"

#define HEADLESS_READ_CHUNK (64 * 1024)
#define HEADLESS_OUT_HIGH (1024 * 1024)
#define HEADLESS_OUT_LOW (256 * 1024)
#define HEADLESS_OUT_MAX (64 * 1024 * 1024)

struct headless;

/* Attaches to e's events and starts reading fd 0 (a pipe, a terminal or a
 * file). Returns NULL with *cause (allocated) on failure. */
struct headless *headless_new(uv_loop_t *loop, struct engine *e, char **cause);
/* Frees h; after the loop has ended (its handles close on "quit"). */
void headless_free(struct headless *h);

#endif
