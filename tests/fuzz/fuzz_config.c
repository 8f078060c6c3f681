/* fuzz_config.c - libFuzzer target for the configuration file parser.
 *
 * Feeds the input to config_load_buffer as a whole file, then to
 * config_set as a value for every key (the checkers behind environment
 * variables and flags), and checks that every error is one line and every
 * stored value can be read back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"

#define VALUE_MAX 8192

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_one_line(const struct choir_error *err)
{
    if (memchr(err->msg, '\n', strnlen(err->msg, sizeof(err->msg))))
        abort();
}

static void set_every_key(struct config *cfg, const uint8_t *data, size_t size)
{
    struct choir_error err;
    char *value;
    size_t i;

    if (size > VALUE_MAX)
        return;
    value = malloc(size + 1);
    if (!value)
        return;
    memcpy(value, data, size);
    value[size] = '\0';
    for (i = 0; i < config_key_count(); i++)
        if (config_set(cfg, config_key_at(i)->name, value, CONFIG_SRC_FLAG, "--fuzz", &err) < 0)
            check_one_line(&err);
    free(value);
}

static void read_back(const struct config *cfg)
{
    size_t i;

    for (i = 0; i < config_key_count(); i++) {
        const struct config_key *k = config_key_at(i);
        const char *v = config_get(cfg, k->name);

        if (!config_origin(cfg, k->name) || (v && !*v))
            abort();
        if (k->type == CONFIG_INT && v && (config_get_int(cfg, k->name) < k->min ||
                                           config_get_int(cfg, k->name) > k->max))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config *cfg = config_new(CONFIG_CHOIR);
    struct choir_error err;

    if (!cfg)
        return 0;
    if (config_load_buffer(cfg, (const char *)data, size, "fuzz.conf", CONFIG_SRC_FILE, &err) < 0)
        check_one_line(&err);
    read_back(cfg);
    set_every_key(cfg, data, size);
    read_back(cfg);
    config_free(cfg);
    return 0;
}
