/* Library version (set by CMake from project(VERSION)). */
#include <imp/imp.h>

#ifndef IMP_VERSION_STRING
#define IMP_VERSION_STRING "0.0.0"
#endif

const char *imp_version(void) { return IMP_VERSION_STRING; }
