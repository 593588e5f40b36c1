/* file_name.h — the name an offered file may land under: checked, never
 * trusted, and never overwriting.
 *
 * A name is accepted as it is or refused, not repaired: a name that needed
 * repair was chosen by a hostile or broken sender. */
#ifndef HYCHAT_FILE_NAME_H
#define HYCHAT_FILE_NAME_H

#include <stddef.h>

#define FILE_NAME_MAX 200 /* bytes: room for " (NNN)" and ".part.hychat" in NAME_MAX */
#define FILE_NAME_TRIES 1000 /* NAME (1).EXT ... NAME (999).EXT */

/* Checks name[0..len): UTF-8 of 1 to FILE_NAME_MAX bytes, no '/' or '\\',
 * no control character (C0, DEL, C1), no leading dot or blank, not ending
 * in a blank or a dot. Returns 0, or -1 with a static reason in *err. */
int file_name_check(const char *name, size_t len, const char **err);
/* The n-th candidate for name into out (size bytes): n 0 is name itself,
 * n 1 "BASE (1).EXT" (the extension: from the last dot not at the start),
 * and so on. Returns 0, or -1 if it does not fit. */
int file_name_candidate(const char *name, unsigned n, char *out, size_t size);

#endif
