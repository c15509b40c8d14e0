/* vm/history.c: the REPL's history file, $HOME/.tide_history. One entry per line, so a
 * multi-line statement comes back whole: '\' and newline are escaped as "\\" and "\n". The file
 * is appended to after every statement (a killed session keeps its history) and cut to the
 * last TDH_MAX entries when the next session starts. */
#include "prog.h"

#include <fcntl.h>
#include <readline/history.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { TDH_MAX = 1000 };

static char path[4096];

static const char *histpath(void) {
    const char *home = getenv("HOME");
    if (!home || !*home) return NULL;
    if (snprintf(path, sizeof path, "%s/.tide_history", home) >= (int)sizeof path) return NULL;
    return path;
}

static void decode(char *s) {
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '\\' && (r[1] == 'n' || r[1] == '\\')) {
            *w++ = r[1] == 'n' ? '\n' : '\\';
            r++;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
}

static void writeentry(FILE *f, const char *e) {
    for (; *e; e++) {
        if (*e == '\n')
            fputs("\\n", f);
        else if (*e == '\\')
            fputs("\\\\", f);
        else
            fputc(*e, f);
    }
    fputc('\n', f);
}

/* rewrites the file with the entries now in memory (the last TDH_MAX): a new file renamed over
 * the old one, so a crash leaves one of the two */
static void rewrite(const char *p) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", p, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        close(fd);
        unlink(tmp);
        return;
    }
    HIST_ENTRY **list = history_list();
    for (int i = 0; list && list[i]; i++) writeentry(f, list[i]->line);
    if (fclose(f) != 0 || rename(tmp, p) != 0) unlink(tmp);
}

void tdH_load(void) {
    stifle_history(TDH_MAX);
    const char *p = histpath();
    if (!p) return;
    FILE *f = fopen(p, "r");
    if (!f) return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long count = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n') line[n - 1] = 0;
        decode(line);
        if (*line) add_history(line);
        count++;
    }
    free(line);
    fclose(f);
    if (count > TDH_MAX) rewrite(p);
}

void tdH_add(const char *entry) {
    if (!entry[strspn(entry, " \t\n")]) return;
    HIST_ENTRY *last = history_length > 0 ? history_get(history_base + history_length - 1) : NULL;
    if (last && !strcmp(last->line, entry)) return;
    add_history(entry);
    const char *p = histpath();
    if (!p) return;
    int fd = open(p, O_WRONLY | O_APPEND | O_CREAT, 0600);
    if (fd < 0) return;
    FILE *f = fdopen(fd, "a");
    if (!f) {
        close(fd);
        return;
    }
    writeentry(f, entry);
    fclose(f);
}
