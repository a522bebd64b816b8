/* The network floor of bench/probe.sh phase 1: the socket work of improbe's
 * simulator targets and nothing else, in C so that nearly all of its CPU
 * time is the kernel's (docs/performance.md, "CPU").
 *
 * At the same rate as improbe (TARGETS x 3 operations every second), in the
 * same order per target: a login on a fresh TCP connection (connect, one
 * POST, read the answer, close), then two POSTs on connections kept alive,
 * as improbe's pooled sends are. Operations start in slots of 32, as
 * improbe's do (`[prober] start_burst`, default 32): every request of a slot is
 * sent, then every answer read, so the process sleeps once per slot, not
 * once per request. Blocking sockets, the fewest system calls a client can
 * make for this: no TLS, no DNS, no option but TCP_NODELAY, no parsing
 * beyond Content-Length. Prints its own CPU time (user and system) per
 * operation.
 *
 * usage: floor PORT TARGETS SECONDS   (the endpoint is 127.0.0.1:PORT)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in endpoint;

static int open_connection(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
        connect(fd, (struct sockaddr *)&endpoint, sizeof endpoint) < 0) {
        perror("connect");
        exit(1);
    }
    return fd;
}

/* Reads one answer whole; 1 if it was a 200. */
static int read_answer(int fd) {
    static char answer[65536];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(fd, answer + have, sizeof answer - 1 - have);
        if (n <= 0) {
            fprintf(stderr, "closed before the answer\n");
            exit(1);
        }
        have += (size_t)n;
        answer[have] = 0;
        char *end = strstr(answer, "\r\n\r\n");
        if (!end)
            continue;
        char *field = strcasestr(answer, "content-length:");
        size_t body = field ? strtoul(field + 15, NULL, 10) : 0;
        if (have >= (size_t)(end + 4 - answer) + body)
            return strncmp(answer, "HTTP/1.1 200", 12) == 0;
    }
}

static size_t request(char *out, size_t size, const char *command, const char *body) {
    return (size_t)snprintf(out, size,
                            "POST /v4/%s?sdkappid=1400000000&identifier=administrator&usersig=x"
                            "&random=1&contenttype=json HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                            command, strlen(body), body);
}

static double seconds_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_seconds(const struct timeval *t) {
    return (double)t->tv_sec + (double)t->tv_usec / 1e6;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: floor PORT TARGETS SECONDS\n");
        return 2;
    }
    endpoint.sin_family = AF_INET;
    endpoint.sin_port = htons((unsigned short)atoi(argv[1]));
    endpoint.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    long operations = atol(argv[2]) * 3;
    double seconds = atof(argv[3]);
    const char *text = "\"MsgBody\":[{\"MsgType\":\"TIMTextElem\",\"MsgContent\":{\"Text\":\"improbe floor\"}}]";
    char body[512], requests[3][1024];
    size_t lengths[3];
    lengths[0] = request(requests[0], sizeof requests[0], "im_open_login_svc/account_check",
                         "{\"CheckItem\":[{\"UserID\":\"improbe_a\"},{\"UserID\":\"improbe_b\"}]}");
    snprintf(body, sizeof body,
             "{\"SyncOtherMachine\":2,\"From_Account\":\"improbe_a\",\"To_Account\":\"improbe_b\","
             "\"MsgLifeTime\":60,\"MsgRandom\":1,%s}", text);
    lengths[1] = request(requests[1], sizeof requests[1], "openim/sendmsg", body);
    snprintf(body, sizeof body, "{\"GroupId\":\"improbe\",\"From_Account\":\"improbe_a\",\"Random\":1,%s}", text);
    lengths[2] = request(requests[2], sizeof requests[2], "group_open_http_svc/send_group_msg", body);

    enum { SLOT = 32 };
    int kept[SLOT], fds[SLOT];
    for (int i = 0; i < SLOT; i++)
        kept[i] = open_connection();
    long done = 0, ok = 0;
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    double start = seconds_now(), step = (double)SLOT / (double)operations;
    for (long slot = 0; slot * step < seconds; slot++) {
        double delay = start + slot * step - seconds_now();
        if (delay > 0) {
            struct timespec pause = {(time_t)delay, (long)((delay - (double)(time_t)delay) * 1e9)};
            nanosleep(&pause, NULL);
        }
        long first = slot * SLOT;
        for (int i = 0; i < SLOT; i++) {
            int kind = (int)((first + i) % 3);
            fds[i] = kind == 0 ? open_connection() : kept[i];
            if (write(fds[i], requests[kind], lengths[kind]) != (ssize_t)lengths[kind]) {
                perror("write");
                return 1;
            }
        }
        for (int i = 0; i < SLOT; i++) {
            ok += read_answer(fds[i]);
            if ((first + i) % 3 == 0)
                close(fds[i]);
            done++;
        }
    }
    getrusage(RUSAGE_SELF, &after);
    double user = (cpu_seconds(&after.ru_utime) - cpu_seconds(&before.ru_utime)) / (double)done * 1e6;
    double system = (cpu_seconds(&after.ru_stime) - cpu_seconds(&before.ru_stime)) / (double)done * 1e6;
    printf("floor: %ld operations (%ld answered 200); CPU %.1f us per operation (system %.1f, user %.1f)\n",
           done, ok, user + system, system, user);
    return 0;
}
