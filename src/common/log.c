/* log.c — leveled one-line logs on stderr. */
#include "hychat/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static const char *log_prog = "hychat";
static enum log_level log_min = LOG_INFO;

static const char *const log_names[] = {
	[LOG_DEBUG] = "debug",
	[LOG_INFO] = "info",
	[LOG_WARN] = "warning",
	[LOG_ERROR] = "error",
};

void
log_init(const char *progname, enum log_level min)
{
	log_prog = progname;
	log_min = min;
}

void
log_msg(enum log_level lvl, const char *fmt, ...)
{
	if (lvl < log_min)
		return;
	char ts[32];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s %s %s: %s\n", ts, log_prog, log_names[lvl], line);
}

void
log_fatal(int status, const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", log_prog, line);
	exit(status);
}

long long
log_flag_number(const char *flag, const char *s, long long min, long long max)
{
	long long v;

	if (hy_parse_number(s, min, max, &v) < 0)
		log_fatal(
		    2, "%s: expected a number from %lld to %lld, got '%s'", flag, min, max, s);
	return v;
}
