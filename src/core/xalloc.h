/* xalloc.h - allocation that cannot fail.
 *
 * Contract: these return usable memory or abort the process with a message
 * on stderr.  choir treats running out of memory as fatal (like redis'
 * zmalloc); every size that comes from outside input is bounded before it
 * reaches an allocation, so an attacker cannot trigger this path. */
#ifndef CHOIR_XALLOC_H
#define CHOIR_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t size);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t size);
/* realloc for arrays: nmemb * size with overflow check. */
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

#endif
