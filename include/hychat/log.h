/* log.h — one-line logs to stderr: a level, a timestamp, the message.
 *
 * log_fatal() prints and exits with the given status (for start-up errors,
 * err(3) style). The access log is a separate, structured line format.
 */
#ifndef HYCHAT_LOG_H
#define HYCHAT_LOG_H

#include "hychat/util.h"

enum log_level {
	LOG_DEBUG,
	LOG_INFO,
	LOG_WARN,
	LOG_ERROR
};

/* Sets the program name printed by log_fatal() and the minimum level. */
void log_init(const char *progname, enum log_level min);
void log_msg(enum log_level lvl, const char *fmt, ...) HY_PRINTF(2, 3);
_Noreturn void log_fatal(int status, const char *fmt, ...) HY_PRINTF(2, 3);
/* The value s of a command-line flag, a number from min to max
 * (hy_parse_number); anything else is fatal, with status 2. */
long long log_flag_number(const char *flag, const char *s, long long min, long long max);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
