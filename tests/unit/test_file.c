/*
 * test_file.c: the file source reads files, directories in rotation order, gzip, resumes from
 * checkpoints and follows a live file through rename rotation and copytruncate.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <zlib.h>

#include "file.h"
#include "frame.h"

struct fx {
    char dir[64];
    char path[128];
};

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof(*f));
    strcpy(f->dir, "/tmp/kt-file-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
    if (system(cmd) != 0) {
        return -1;
    }
    free(f);
    return 0;
}

static void write_file(const char *path, const char *mode, const char *text)
{
    FILE *fp = fopen(path, mode);
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void write_gz(const char *path, const char *a, const char *b)
{
    /* two gzip members back to back, as concatenated rotations produce */
    gzFile gz = gzopen(path, "wb");
    gzputs(gz, a);
    gzclose(gz);
    gz = gzopen(path, "ab");
    gzputs(gz, b);
    gzclose(gz);
}

/* Drain src: the records' texts joined by '|', failures and the last checkpoint. */
struct drained {
    char text[8192];
    unsigned records;
    unsigned rejects;
    char rejected[512]; /* each reject's "line:offset " */
    struct kt_ckpt_file first;
    struct kt_ckpt_file last;
    int ckpts;
};

static void drain(struct kt_source *src, struct drained *d, int follow_rounds)
{
    struct kt_batch *b = kt_batch_create();
    size_t len = strlen(d->text);
    int idle = 0;
    for (;;) {
        int rc = kt_source_next(src, b, 20);
        if (rc == KT_EOF) {
            break;
        }
        if (rc == KT_EAGAIN) {
            if (++idle >= follow_rounds) {
                break;
            }
            continue;
        }
        assert_int_equal(rc, 0);
        for (size_t i = 0; i < b->nrecs; i++) {
            const struct kt_record *r = &b->recs[i];
            if (r->reject != NULL) {
                size_t rl = strlen(d->rejected);
                snprintf(d->rejected + rl, sizeof(d->rejected) - rl, "%llu:%llu ",
                         (unsigned long long)r->line, (unsigned long long)r->off);
                d->rejects++;
                continue;
            }
            d->records++;
            len += (size_t)snprintf(d->text + len, sizeof(d->text) - len, "%.*s|", (int)r->len,
                                    b->buf + r->pos);
        }
        if (b->ckpt_kind == KT_CKPT_FILE) {
            d->last = b->ckpt_file;
            d->last.path = NULL;
            if (d->ckpts++ == 0) {
                d->first = d->last;
            }
        }
        kt_batch_reset(b);
    }
    kt_batch_destroy(b);
}

static struct kt_source *open_src(const char *const *paths, size_t n, struct kt_file_opts *o)
{
    struct kt_source *src = NULL;
    char err[256];
    assert_int_equal(kt_file_source_create(paths, n, o, &src, err, sizeof(err)), 0);
    return src;
}

static void test_file_plain_file_records_and_done_checkpoint(void **state)
{
    struct fx *f = *state;
    snprintf(f->path, sizeof(f->path), "%s/audit.log", f->dir);
    write_file(f->path, "w", "{\"a\":1}\n{\"a\":2}\nnot json\n{\"a\":3}\n");
    struct kt_file_opts o = {0};
    const char *paths[] = {f->path};
    struct kt_source *src = open_src(paths, 1, &o);
    struct drained d = {0};
    drain(src, &d, 1);
    assert_string_equal(d.text, "{\"a\":1}|{\"a\":2}|{\"a\":3}|");
    assert_int_equal(d.rejects, 1);
    assert_int_equal(d.last.done, 1);
    assert_int_equal(d.last.offset, 33);
    assert_int_equal(kt_file_source_failures(src), 0);
    kt_source_destroy(src);
}

static void test_file_directory_read_in_rotation_order(void **state)
{
    struct fx *f = *state;
    char p[256];
    snprintf(p, sizeof(p), "%s/audit.log", f->dir);
    write_file(p, "w", "{\"n\":3}\n");
    snprintf(p, sizeof(p), "%s/audit-2024-05-02T00-00-00.000.log", f->dir);
    write_file(p, "w", "{\"n\":2}\n");
    snprintf(p, sizeof(p), "%s/audit-2024-05-01T00-00-00.000.log.gz", f->dir);
    write_gz(p, "{\"n\":1}\n", "{\"n\":1.5}\n");
    snprintf(p, sizeof(p), "%s/.hidden", f->dir);
    write_file(p, "w", "{\"n\":0}\n");
    struct kt_file_opts o = {0};
    const char *paths[] = {f->dir};
    struct kt_source *src = open_src(paths, 1, &o);
    struct drained d = {0};
    drain(src, &d, 1);
    assert_string_equal(d.text, "{\"n\":1}|{\"n\":1.5}|{\"n\":2}|{\"n\":3}|");
    assert_int_equal(d.ckpts, 3);
    kt_source_destroy(src);
}

static void test_file_corrupt_gzip_counts_a_failure_after_what_was_read(void **state)
{
    struct fx *f = *state;
    snprintf(f->path, sizeof(f->path), "%s/bad.log.gz", f->dir);
    char text[40000];
    size_t n = 0;
    for (int i = 0; i < 2000; i++) {
        n += (size_t)snprintf(text + n, sizeof(text) - n, "{\"i\":%d}\n", i);
    }
    gzFile gz = gzopen(f->path, "wb");
    gzwrite(gz, text, (unsigned)n);
    gzclose(gz);
    truncate(f->path, 300); /* cut the stream short */
    char other[128];
    snprintf(other, sizeof(other), "%s/ok.log", f->dir);
    write_file(other, "w", "{\"ok\":1}\n");
    struct kt_file_opts o = {0};
    const char *paths[] = {f->path, other};
    struct kt_source *src = open_src(paths, 2, &o);
    struct drained d = {0};
    drain(src, &d, 1);
    assert_int_equal(kt_file_source_failures(src), 1);
    assert_true(d.records > 1 && d.records < 2000);
    assert_non_null(strstr(d.text, "{\"ok\":1}|"));
    kt_source_destroy(src);
}

static void test_file_missing_path_is_counted_and_skipped(void **state)
{
    struct fx *f = *state;
    snprintf(f->path, sizeof(f->path), "%s/audit.log", f->dir);
    write_file(f->path, "w", "{\"a\":1}\n");
    struct kt_file_opts o = {0};
    const char *paths[] = {"/nonexistent/kt/audit.log", f->path};
    struct kt_source *src = open_src(paths, 2, &o);
    struct drained d = {0};
    drain(src, &d, 1);
    assert_int_equal(kt_file_source_failures(src), 1);
    assert_string_equal(d.text, "{\"a\":1}|");
    kt_source_destroy(src);
}

/* A fake checkpoint table of one entry. */
struct fake_ckpt {
    uint64_t fp;
    uint64_t offset;
    uint64_t line;
    uint64_t col;
    int mode;
    int done;
    int found;
};

static int fake_lookup(void *ctx, uint64_t fp, struct kt_ckpt_file *out)
{
    struct fake_ckpt *c = ctx;
    if (!c->found || fp != c->fp) {
        return KT_ENOENT;
    }
    out->offset = c->offset;
    out->mode = c->mode;
    out->line = c->line;
    out->col = c->col;
    out->done = c->done;
    return 0;
}

static void test_file_resumes_at_checkpoint_and_skips_done_files(void **state)
{
    struct fx *f = *state;
    /* the first line is over 1 KB, so the fingerprint (first KB) survives appends */
    char first[1200];
    int n1 = snprintf(first, sizeof(first), "{\"a\":1,\"pad\":\"%01100d\"}\n", 0);
    snprintf(f->path, sizeof(f->path), "%s/audit.log", f->dir);
    write_file(f->path, "w", first);
    write_file(f->path, "a", "{\"a\":2}\n{\"a\":3}\n");
    /* learn the fingerprint from a first full read */
    struct kt_file_opts o = {0};
    const char *paths[] = {f->path};
    struct kt_source *src = open_src(paths, 1, &o);
    struct drained d = {0};
    drain(src, &d, 1);
    kt_source_destroy(src);
    assert_int_equal(d.records, 3);
    assert_int_equal(d.last.offset, (uint64_t)n1 + 16);

    struct fake_ckpt c = {.fp = d.last.fingerprint, .offset = (uint64_t)n1, .found = 1};
    o.lookup = fake_lookup;
    o.lookup_ctx = &c;
    src = open_src(paths, 1, &o);
    struct drained d2 = {0};
    drain(src, &d2, 1);
    assert_string_equal(d2.text, "{\"a\":2}|{\"a\":3}|");
    kt_source_destroy(src);

    c.offset = (uint64_t)n1 + 16;
    c.done = 1;
    src = open_src(paths, 1, &o);
    struct drained d3 = {0};
    drain(src, &d3, 1);
    assert_int_equal(d3.records, 0);
    assert_int_equal(kt_file_source_skipped(src), 1);
    kt_source_destroy(src);

    /* a done file that has grown since is read from where it stopped */
    write_file(f->path, "a", "{\"a\":4}\n");
    src = open_src(paths, 1, &o);
    struct drained d4 = {0};
    drain(src, &d4, 1);
    assert_string_equal(d4.text, "{\"a\":4}|");
    kt_source_destroy(src);
}

static void test_file_follow_survives_rename_rotation_and_copytruncate(void **state)
{
    struct fx *f = *state;
    char rotated[160];
    snprintf(f->path, sizeof(f->path), "%s/audit.log", f->dir);
    snprintf(rotated, sizeof(rotated), "%s/audit-2024-05-01T00-00-00.000.log", f->dir);
    write_file(f->path, "w", "{\"a\":1}\n");
    struct kt_file_opts o = {.follow = 1, .poll_ms = 5};
    const char *paths[] = {f->path};
    struct kt_source *src = open_src(paths, 1, &o);
    struct drained d = {0};
    drain(src, &d, 3);
    assert_string_equal(d.text, "{\"a\":1}|");

    write_file(f->path, "a", "{\"a\":2}\n{\"a\":");
    drain(src, &d, 3);
    assert_string_equal(d.text, "{\"a\":1}|{\"a\":2}|"); /* the partial line waits */

    /* rename rotation: the writer finishes its line in the old file, then a new file */
    assert_int_equal(rename(f->path, rotated), 0);
    write_file(rotated, "a", "3}\n");
    write_file(f->path, "w", "{\"a\":4}\n");
    drain(src, &d, 6);
    assert_string_equal(d.text, "{\"a\":1}|{\"a\":2}|{\"a\":3}|{\"a\":4}|");

    /* copytruncate: the file is emptied in place and written again */
    assert_int_equal(truncate(f->path, 0), 0);
    drain(src, &d, 3);
    write_file(f->path, "a", "{\"a\":5}\n");
    drain(src, &d, 3);
    assert_string_equal(d.text, "{\"a\":1}|{\"a\":2}|{\"a\":3}|{\"a\":4}|{\"a\":5}|");
    assert_int_equal(d.rejects, 0);

    kt_source_stop(src);
    drain(src, &d, 1);
    kt_source_destroy(src);
}

static void test_file_resumed_replay_goes_on_with_lines_and_columns(void **state)
{
    struct fx *f = *state;
    snprintf(f->path, sizeof(f->path), "%s/audit.log", f->dir);
    /* the second value is cut short on the line of the first */
    write_file(f->path, "w", "{\"a\":1}\n{\"a\":2} {\"a\":\nnot json\n{\"a\":3}\n");
    struct kt_file_opts o = {.batch_records = 2};
    const char *paths[] = {f->path};
    struct kt_source *src = open_src(paths, 1, &o);
    struct drained whole = {0};
    drain(src, &whole, 1);
    kt_source_destroy(src);
    assert_string_equal(whole.rejected, "2:16 ");
    /* the first batch ends after {"a":2}, mid-line: that is where its checkpoint stands */
    assert_int_equal(whole.first.offset, 15);
    assert_int_equal(whole.first.line, 2);
    assert_int_equal(whole.first.col, 7);

    struct fake_ckpt c = {.fp = whole.first.fingerprint,
                          .offset = whole.first.offset,
                          .line = whole.first.line,
                          .col = whole.first.col,
                          .found = 1};
    o.lookup = fake_lookup;
    o.lookup_ctx = &c;
    src = open_src(paths, 1, &o);
    struct drained resumed = {0};
    drain(src, &resumed, 1);
    kt_source_destroy(src);
    assert_string_equal(resumed.text, "{\"a\":3}|");
    assert_string_equal(resumed.rejected, whole.rejected);
}

static void test_file_follow_sees_copytruncate_then_a_longer_write(void **state)
{
    struct fx *f = *state;
    snprintf(f->path, sizeof(f->path), "%s/audit.log", f->dir);
    write_file(f->path, "w", "{\"a\":1}\n{\"a\":2}\n");
    struct kt_file_opts o = {.follow = 1, .poll_ms = 5};
    const char *paths[] = {f->path};
    struct kt_source *src = open_src(paths, 1, &o);
    struct drained d = {0};
    drain(src, &d, 3);
    assert_string_equal(d.text, "{\"a\":1}|{\"a\":2}|");

    /* copied away and emptied, then at once more is written than was read: the size never
     * falls below what was read, only the first bytes tell */
    assert_int_equal(truncate(f->path, 0), 0);
    write_file(f->path, "a", "{\"b\":10}\n{\"b\":11}\n{\"b\":12}\n");
    drain(src, &d, 3);
    assert_string_equal(d.text, "{\"a\":1}|{\"a\":2}|{\"b\":10}|{\"b\":11}|{\"b\":12}|");
    assert_int_equal(d.rejects, 0);
    kt_source_stop(src);
    drain(src, &d, 1);
    kt_source_destroy(src);
}

static void test_file_follow_needs_exactly_one_file(void **state)
{
    (void)state;
    struct kt_file_opts o = {.follow = 1};
    const char *paths[] = {"a.log", "b.log"};
    struct kt_source *src = NULL;
    char err[256] = "";
    assert_int_equal(kt_file_source_create(paths, 2, &o, &src, err, sizeof(err)), KT_EINVAL);
    assert_non_null(strstr(err, "--follow"));
    const char *stdin_path[] = {"-"};
    assert_int_equal(kt_file_source_create(stdin_path, 1, &o, &src, err, sizeof(err)), KT_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_plain_file_records_and_done_checkpoint, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_file_directory_read_in_rotation_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_file_corrupt_gzip_counts_a_failure_after_what_was_read,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_missing_path_is_counted_and_skipped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_file_resumes_at_checkpoint_and_skips_done_files, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_file_follow_survives_rename_rotation_and_copytruncate,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_resumed_replay_goes_on_with_lines_and_columns,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_follow_sees_copytruncate_then_a_longer_write,
                                        setup, teardown),
        cmocka_unit_test(test_file_follow_needs_exactly_one_file),
    };
    kt_log_level = KT_LOG_ERROR - 1; /* the failures above are expected: keep the output quiet */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
