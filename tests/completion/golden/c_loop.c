#include <stdio.h>
#include <stdlib.h>

/* Sums the numbers given on the command line. */
static long parse(const char *s) {
  char *end = NULL;
  long v = strtol(s, &end, 10);
  return *end ? 0 : v;
}

int main(int argc, char **argv) {
  long total = 0;
  for (int i = 1; i < argc; ++i) {
    <CURSOR>
  }
  printf("%ld\n", total);
  return 0;
}
