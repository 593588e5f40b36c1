/* contacts.c — contacts and blocked users: a sorted array in memory, the
 * "contacts" table in the peer database behind it. */
#include "hychat/contacts.h"

#include <stdlib.h>
#include <string.h>

#include "hychat/util.h"

static const char contacts_schema[] = "CREATE TABLE IF NOT EXISTS contacts ("
                                      "  user TEXT PRIMARY KEY,"
                                      "  contact INTEGER NOT NULL DEFAULT 0,"
                                      "  blocked INTEGER NOT NULL DEFAULT 0);";

#define CONTACTS_STMTS(X) \
	X(LOAD, "SELECT user, contact, blocked FROM contacts ORDER BY user") \
	X(PUT, \
	    "INSERT INTO contacts (user, contact, blocked) VALUES (?1, ?2, ?3)" \
	    " ON CONFLICT (user) DO UPDATE SET contact = ?2, blocked = ?3") \
	X(DEL, "DELETE FROM contacts WHERE user = ?1")

enum contacts_stmt {
#define CONTACTS_STMT_ENUM(id, sql) CS_##id,
	CONTACTS_STMTS(CONTACTS_STMT_ENUM)
#undef CONTACTS_STMT_ENUM
	CS_COUNT
};

static const char *const contacts_sql[CS_COUNT] = {
#define CONTACTS_STMT_SQL(id, sql) sql,
	CONTACTS_STMTS(CONTACTS_STMT_SQL)
#undef CONTACTS_STMT_SQL
};

struct contacts {
	struct peerdb *db;
	sqlite3_stmt *st[CS_COUNT];
	struct contact *list; /* sorted by user; user strings owned */
	size_t n;
};

static size_t
position(const struct contacts *c, const char *user, int *found)
{
	size_t lo = 0, hi = c->n;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(c->list[mid].user, user);
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

static void
insert_at(struct contacts *c, size_t i, const char *user, int contact, int blocked)
{
	c->list = xrealloc(c->list, (c->n + 1) * sizeof(*c->list));
	memmove(&c->list[i + 1], &c->list[i], (c->n - i) * sizeof(*c->list));
	c->list[i].user = xstrdup(user);
	c->list[i].contact = contact;
	c->list[i].blocked = blocked;
	c->n++;
}

struct contacts *
contacts_open(struct peerdb *db, char **cause)
{
	struct contacts *c;
	int rc;

	if (peerdb_exec(db, contacts_schema, cause) < 0)
		return NULL;
	c = xcalloc(1, sizeof(*c));
	c->db = db;
	for (int i = 0; i < CS_COUNT; i++) {
		if ((c->st[i] = peerdb_prepare(db, contacts_sql[i], cause)) == NULL) {
			free(c);
			return NULL;
		}
	}
	while ((rc = sqlite3_step(c->st[CS_LOAD])) == SQLITE_ROW && c->n < CONTACTS_MAX) {
		const char *user = (const char *)sqlite3_column_text(c->st[CS_LOAD], 0);
		if (user != NULL && strlen(user) <= CONTACTS_NAME_MAX)
			insert_at(c, c->n, user, sqlite3_column_int(c->st[CS_LOAD], 1) != 0,
			    sqlite3_column_int(c->st[CS_LOAD], 2) != 0);
	}
	sqlite3_reset(c->st[CS_LOAD]);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		*cause = peerdb_cause(db, "contacts: load");
		contacts_free(c);
		return NULL;
	}
	return c;
}

void
contacts_free(struct contacts *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++)
		free((char *)c->list[i].user);
	free(c->list);
	free(c);
}

static int
store(struct contacts *c, const char *user, int contact, int blocked)
{
	sqlite3_stmt *q = c->st[contact || blocked ? CS_PUT : CS_DEL];
	int rc;

	if (peerdb_write(c->db) < 0)
		return -1;
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	sqlite3_bind_text(q, 1, user, -1, SQLITE_STATIC);
	if (contact || blocked) {
		sqlite3_bind_int(q, 2, contact);
		sqlite3_bind_int(q, 3, blocked);
	}
	rc = sqlite3_step(q);
	sqlite3_reset(q);
	return rc == SQLITE_DONE ? 0 : -1;
}

int
contacts_set(struct contacts *c, const char *user, enum contacts_flag what, int on)
{
	int found, contact, blocked;
	size_t i = position(c, user, &found);

	on = on != 0;
	contact = found ? c->list[i].contact : 0;
	blocked = found ? c->list[i].blocked : 0;
	if ((what == CONTACTS_CONTACT ? contact : blocked) == on)
		return 0;
	if (what == CONTACTS_CONTACT)
		contact = on;
	else
		blocked = on;
	if ((!found && c->n >= CONTACTS_MAX) || strlen(user) > CONTACTS_NAME_MAX ||
	    store(c, user, contact, blocked) < 0)
		return -1;
	if (!found) {
		insert_at(c, i, user, contact, blocked);
	} else if (!contact && !blocked) {
		free((char *)c->list[i].user);
		memmove(&c->list[i], &c->list[i + 1], (c->n - i - 1) * sizeof(*c->list));
		c->n--;
	} else {
		c->list[i].contact = contact;
		c->list[i].blocked = blocked;
	}
	return 1;
}

const struct contact *
contacts_get(const struct contacts *c, const char *user)
{
	int found;
	size_t i;

	if (c == NULL)
		return NULL;
	i = position(c, user, &found);
	return found ? &c->list[i] : NULL;
}

int
contacts_is_blocked(const struct contacts *c, const char *user)
{
	const struct contact *k = contacts_get(c, user);

	return k != NULL && k->blocked;
}

const struct contact *
contacts_list(const struct contacts *c, size_t *n)
{
	*n = c->n;
	return c->list;
}
