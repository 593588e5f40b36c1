/* profile_map.h — the local store's profiles in memory: a display name
 * and a status line per user, in a sorted array (profile_map.c). Not
 * thread-safe: the local store's lock guards it. Not an interface
 * outside src/tracker. */
#ifndef HYCHAT_PROFILE_MAP_H
#define HYCHAT_PROFILE_MAP_H

struct profile_map;

struct profile_map *profile_map_new(void);
void profile_map_free(struct profile_map *m);
/* Sets user's profile; both "" removes it. */
void profile_map_put(
    struct profile_map *m, const char *user, const char *display, const char *status);
/* user's profile: 1 with *display and *status set (valid until the next
 * put), 0 if there is none. */
int profile_map_get(
    const struct profile_map *m, const char *user, const char **display, const char **status);

#endif
