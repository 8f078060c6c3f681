/* http_body.c - see http_body.h. */
#include "net/http_body.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t http_once = PTHREAD_ONCE_INIT;
static CURLcode http_init_result = CURLE_FAILED_INIT;

static void http_init_once(void)
{
    http_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int http_global_init(struct choir_error *err)
{
    pthread_once(&http_once, http_init_once);
    if (http_init_result == CURLE_OK)
        return 0;
    error_set(err, CHOIR_EXIT_INTERNAL, "cannot initialise libcurl: %s",
              curl_easy_strerror(http_init_result));
    return -1;
}

size_t http_body_write(char *data, size_t size, size_t nmemb, void *userp)
{
    struct http_body *b = userp;
    size_t n = size * nmemb;

    if (n > b->max - b->len) {
        b->too_big = 1;
        return 0;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 16384;
        char *grown;

        while (cap < b->len + n + 1)
            cap *= 2;
        if (!(grown = realloc(b->buf, cap))) {
            b->no_memory = 1;
            return 0;
        }
        b->buf = grown;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, data, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return n;
}
