/* profile_map.c — profiles in memory, for the local store: a sorted
 * array of users, each with its display name and status line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hychat/util.h"
#include "profile_map.h"

struct profile_entry {
	char user[HY_NAME_MAX + 1];
	char *display, *status;
};

struct profile_map {
	struct profile_entry *v;
	size_t n;
};

struct profile_map *
profile_map_new(void)
{
	return xcalloc(1, sizeof(struct profile_map));
}

static void
entry_free(struct profile_entry *e)
{
	free(e->display);
	free(e->status);
}

void
profile_map_free(struct profile_map *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->n; i++)
		entry_free(&m->v[i]);
	free(m->v);
	free(m);
}

static size_t
position(const struct profile_map *m, const char *user, int *found)
{
	size_t lo = 0, hi = m->n;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(m->v[mid].user, user);
		if (cmp == 0) {
			*found = 1;
			return mid;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void
profile_map_put(struct profile_map *m, const char *user, const char *display, const char *status)
{
	int found;
	size_t i = position(m, user, &found);

	if (display[0] == '\0' && status[0] == '\0') {
		if (found) {
			entry_free(&m->v[i]);
			memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof(*m->v));
			m->n--;
		}
		return;
	}
	if (!found) {
		m->v = xrealloc(m->v, (m->n + 1) * sizeof(*m->v));
		memmove(&m->v[i + 1], &m->v[i], (m->n - i) * sizeof(*m->v));
		memset(&m->v[i], 0, sizeof(*m->v));
		snprintf(m->v[i].user, sizeof(m->v[i].user), "%s", user);
		m->n++;
	} else {
		entry_free(&m->v[i]);
	}
	m->v[i].display = xstrdup(display);
	m->v[i].status = xstrdup(status);
}

int
profile_map_get(
    const struct profile_map *m, const char *user, const char **display, const char **status)
{
	int found;
	size_t i = position(m, user, &found);

	if (!found)
		return 0;
	*display = m->v[i].display;
	*status = m->v[i].status;
	return 1;
}
