// wordcount-c: the wordcount example in C (wasi-libc). Counts lines, words (runs of
// non-whitespace) and bytes, like `wc`, and prints {"lines":L,"words":W,"bytes":B}.
// With no arguments it reads stdin (a task with one dataset); with arguments it reads each
// /data/NAME named (a task with several datasets) and prints the totals (a word never spans
// two files). Exit status 1 if a file cannot be opened, 2 on a read error.
//
// Build: clang --target=wasm32-wasi -O2 -s -o wordcount-c.wasm app.c
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static unsigned char buf[65536];
static uint64_t lines, words, bytes;

// Counts one input to its end; returns 0, or -1 on a read error.
static int count(int fd) {
  int in_word = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0) return -1;
    if (n == 0) return 0;
    bytes += (uint64_t)n;
    for (ssize_t i = 0; i < n; i++) {
      unsigned char c = buf[i];
      if (c == '\n') lines++;
      int space = c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
      if (space) {
        in_word = 0;
      } else if (!in_word) {
        in_word = 1;
        words++;
      }
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 2) {
    if (count(0) != 0) return 2;
  } else {
    for (int i = 1; i < argc; i++) {
      char path[256];
      if (snprintf(path, sizeof path, "/data/%s", argv[i]) >= (int)sizeof path) return 1;
      int fd = open(path, O_RDONLY);
      if (fd < 0) {
        fprintf(stderr, "wordcount-c: cannot open %s: %s\n", path, strerror(errno));
        return 1;
      }
      int r = count(fd);
      close(fd);
      if (r != 0) return 2;
    }
  }
  printf("{\"lines\":%" PRIu64 ",\"words\":%" PRIu64 ",\"bytes\":%" PRIu64 "}\n", lines, words, bytes);
  return 0;
}
