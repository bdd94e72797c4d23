/*
 * kafka_mock.c: a Kafka cluster for tests and benchmarks, from librdkafka's mock cluster.
 *
 *   kafka-mock [--brokers N] [--partitions N] TOPIC...
 *
 * Starts N brokers (default 3) on loopback, creates each TOPIC with the given partitions
 * (default 6), prints the bootstrap address ("127.0.0.1:PORT,...") on a line of stdout, and
 * then serves until stdin reaches its end or SIGTERM/SIGINT arrives. Lines on stdin drive it:
 * "down ID" and "up ID" take broker ID (1..N) down or back up, "quit" ends it. kcat, ktrail
 * and any librdkafka client can use the address; the data lives in memory only.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void quiet_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (level <= 3) {
        fprintf(stderr, "kafka-mock: %s: %s\n", fac, buf);
    }
}

static int usage(void)
{
    fputs("usage: kafka-mock [--brokers N] [--partitions N] TOPIC...\n", stderr);
    return 2;
}

/* Handle one command line; 1 to quit. */
static int command(rd_kafka_mock_cluster_t *mc, const char *line)
{
    int id = 0;
    if (sscanf(line, "down %d", &id) == 1) {
        rd_kafka_mock_broker_set_down(mc, id);
        fprintf(stderr, "kafka-mock: broker %d down\n", id);
    } else if (sscanf(line, "up %d", &id) == 1) {
        rd_kafka_mock_broker_set_up(mc, id);
        fprintf(stderr, "kafka-mock: broker %d up\n", id);
    } else if (strncmp(line, "quit", 4) == 0) {
        return 1;
    } else if (line[0] != '\n' && line[0] != '\0') {
        fprintf(stderr, "kafka-mock: unknown command: %s", line);
    }
    return 0;
}

int main(int argc, char **argv)
{
    int brokers = 3, partitions = 6, first = 1;
    char err[512];
    struct sigaction sa;

    while (first < argc && strncmp(argv[first], "--", 2) == 0) {
        if (first + 1 >= argc) {
            return usage();
        }
        if (strcmp(argv[first], "--brokers") == 0) {
            brokers = atoi(argv[first + 1]);
        } else if (strcmp(argv[first], "--partitions") == 0) {
            partitions = atoi(argv[first + 1]);
        } else {
            return usage();
        }
        first += 2;
    }
    if (first >= argc || brokers < 1 || partitions < 1) {
        return usage();
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal; /* no SA_RESTART: poll() returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, quiet_log);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (rk == NULL) {
        fprintf(stderr, "kafka-mock: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
    if (mc == NULL) {
        fprintf(stderr, "kafka-mock: cannot start the mock cluster\n");
        rd_kafka_destroy(rk);
        return 1;
    }
    for (int i = first; i < argc; i++) {
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, argv[i], partitions, brokers);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "kafka-mock: topic %s: %s\n", argv[i], rd_kafka_err2str(e));
            rd_kafka_mock_cluster_destroy(mc);
            rd_kafka_destroy(rk);
            return 1;
        }
    }
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);

    char line[256];
    size_t n = 0;
    while (!stop) {
        struct pollfd pfd = {.fd = STDIN_FILENO, .events = POLLIN};
        int r = poll(&pfd, 1, 500);
        if (r < 0 && errno != EINTR) {
            break;
        }
        if (r <= 0) {
            continue;
        }
        ssize_t got = read(STDIN_FILENO, line + n, sizeof(line) - 1 - n);
        if (got <= 0) {
            break; /* stdin closed */
        }
        n += (size_t)got;
        line[n] = '\0';
        char *nl;
        int quit = 0;
        while (!quit && (nl = strchr(line, '\n')) != NULL) {
            size_t len = (size_t)(nl - line) + 1;
            char one[256];
            memcpy(one, line, len);
            one[len] = '\0';
            quit = command(mc, one);
            memmove(line, line + len, n - len + 1);
            n -= len;
        }
        if (quit) {
            break;
        }
        if (n == sizeof(line) - 1) {
            n = 0; /* a line too long for any command */
        }
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
