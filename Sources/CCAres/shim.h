#ifndef LB_CCARES_SHIM_H
#define LB_CCARES_SHIM_H
#include <ares.h>
#include <arpa/nameser.h>

/*
 * c-ares's query classes and types are macros from <arpa/nameser.h> (C_IN, T_A, ...) whose spelling varies by
 * platform; these helpers give Swift one stable name for each value lb asks for.
 */
static inline int lb_ares_class_in(void) { return 1; }
static inline int lb_ares_type_a(void) { return 1; }
static inline int lb_ares_type_aaaa(void) { return 28; }
static inline int lb_ares_type_srv(void) { return 33; }

#endif
