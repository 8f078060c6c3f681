/* Compiled by ctest: with the core/net include path it must fail (layer rule),
 * without it it must succeed (so the failure is the rule, not a typo). */
#include <curses.h>

int layer_probe(void);
int layer_probe(void) { return COLS; }
