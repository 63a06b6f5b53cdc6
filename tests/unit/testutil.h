/* testutil.h — small helpers shared by the unit tests: reading data files, making content. */
#ifndef S3T_TESTUTIL_H
#define S3T_TESTUTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

/* Runs suite s (as every unit test's main does); returns the process exit status. */
int tu_run(Suite *s);

/* Reads a whole file (path relative to the test data folder); aborts the test on failure. */
uint8_t *tu_read_data(const char *rel, size_t *len);
/* Writes len bytes with byte i = (i + seed) mod 251 to a new temporary file; returns its path
 * (caller frees and unlinks). */
char *tu_make_file(uint64_t len, unsigned seed);
/* Lower-case hex of a string of 2n digits into n bytes. */
void tu_unhex(const char *hex, uint8_t *out, size_t n);

#endif
