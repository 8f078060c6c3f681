/* cmocka_setup.h - the includes cmocka needs, in the order it needs them. */
#ifndef CHOIR_CMOCKA_SETUP_H
#define CHOIR_CMOCKA_SETUP_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#endif
