#!/usr/bin/env python3
"""Generate a deterministic, realistic Java/Spring Boot application log for logding's benchmarks.

Usage: bench/gen.py [--size-mb 500] [--seed 42] > app.log

Shape of the output (same seed and size give the same bytes):
- Spring Boot default layout: `2026-11-28 10:00:00.123  INFO 4242 --- [nio-8080-exec-7]
  c.e.shop.order.OrderService : message`, with thread names, loggers, order/user/trace ids,
  IPv4 addresses and durations;
- levels: about 0.5% ERROR (most followed by a multi-line stack trace with `Caused by:`),
  3% WARN, 70% INFO, the rest DEBUG;
- one ~20 KB line (a logged JSON payload) about every 10,000 lines;
- one invalid UTF-8 byte about every 7,000 lines.

`--follow-rate N --duration S` instead appends N lines per second for S seconds to stdout, with
one `LAGPROBE written_ns=<ns>` line every 10 ms, for the follow rows of bench/run.sh (bench/bench.py).
"""

import argparse
import random
import sys
import time

THREADS = [f"nio-8080-exec-{i}" for i in range(1, 41)] + [
    "main", "scheduling-1", "task-3", "kafka-consumer-1", "HikariPool-1 housekeeper",
    "lettuce-nioEventLoop-4-1", "http-nio-8080-Acceptor",
]
LOGGERS = [
    "c.e.shop.order.OrderService", "c.e.shop.order.OrderController", "c.e.shop.pay.PaymentClient",
    "c.e.shop.user.UserRepository", "o.s.web.servlet.DispatcherServlet", "c.zaxxer.hikari.HikariPool",
    "o.a.kafka.clients.consumer.KafkaConsumer", "c.e.shop.inventory.StockService",
    "o.h.engine.jdbc.spi.SqlExceptionHelper", "c.e.shop.gateway.AccessLog",
    "o.s.s.w.a.AuthenticationFilter", "io.lettuce.core.RedisClient",
]
PATHS = ["/api/orders", "/api/orders/{id}", "/api/users/{id}", "/api/pay", "/api/cart",
         "/api/stock/{id}", "/actuator/health", "/api/search"]
ERRORS = [
    # (message, exception chain): each message is what at least one rule of bench/rules.yaml
    # looks for, except the last few (errors no rule knows about).
    ("Unexpected error processing order {id}", "java.lang.OutOfMemoryError: Java heap space"),
    ("Request failed", "java.lang.NullPointerException: Cannot invoke \"String.length()\" because \"s\" is null"),
    ("Could not open JDBC Connection for transaction", "java.sql.SQLTransientConnectionException: HikariPool-1 - Connection is not available, request timed out after 30000ms."),
    ("Payment call failed for order {id}", "java.net.SocketTimeoutException: Connection timed out"),
    ("Database error on order {id}", "com.mysql.cj.jdbc.exceptions.MySQLTransactionRollbackException: Deadlock found when trying to get lock; try restarting transaction"),
    ("Kafka send failed", "org.apache.kafka.common.errors.TimeoutException: Topic orders not present in metadata after 60000 ms."),
    ("Failed to write export file", "java.io.IOException: No space left on device"),
    ("Recursive pricing rule", "java.lang.StackOverflowError"),
    ("Task rejected", "java.util.concurrent.RejectedExecutionException: Thread pool is EXHAUSTED!"),
    ("Query failed", "org.springframework.jdbc.BadSqlGrammarException: PreparedStatementCallback; bad SQL grammar"),
    ("TLS to payment gateway failed", "javax.net.ssl.SSLHandshakeException: PKIX path building failed"),
    ("Cache unavailable", "org.springframework.data.redis.RedisConnectionFailureException: Unable to connect to Redis"),
    ("Validation failed for order {id}", "java.lang.IllegalArgumentException: quantity must be positive"),
    ("Stock reservation failed", "c.e.shop.inventory.StockException: not enough stock for sku {id}"),
]
WARNS = [
    "Slow request {path} took {slow}ms",
    "Retrying payment for order {id} (attempt {n}/3)",
    "CircuitBreaker 'paymentGateway' is OPEN and does not permit further calls",
    "Authentication failed for user u{id} from {ip}",
    "HikariPool-1 - Thread starvation or clock leap detected (housekeeper delta={n}s).",
    "Full GC (Allocation Failure) pause {ms}ms",
    "payment declined: code={code} order={id}",
    "Cache miss ratio high: {n}%",
]
INFOS = [
    "{method} {path} status={status} bytes={bytes} in {ms}ms client={ip} trace={trace}",
    "Order {id} placed by user {user} from {ip}, {n} items, total {amount} CNY",
    "Completed initialization in {ms} ms",
    "Fetched {n} rows from orders in {ms}ms",
    "Reserved {n} units of sku {id} for order {id2}",
    "Sending order {id} to topic orders partition {p}",
    "User {user} logged in from {ip}",
]
DEBUGS = [
    "Cache hit for key order:{id}",
    "Executing SQL query [select o.id, o.status from orders o where o.user_id=?] params [{user}]",
    "Mapped to c.e.shop.order.OrderController#get(Long) for {path}",
    "Acquired connection HikariProxyConnection@{n} wrapping conn{p}",
    "Heartbeat sent to coordinator broker-{p}:9092",
]
FRAMES = [
    "c.e.shop.order.OrderService.place(OrderService.java:{n})",
    "c.e.shop.order.OrderController.create(OrderController.java:{n})",
    "org.springframework.web.servlet.FrameworkServlet.service(FrameworkServlet.java:{n})",
    "jakarta.servlet.http.HttpServlet.service(HttpServlet.java:{n})",
    "org.apache.catalina.core.ApplicationFilterChain.doFilter(ApplicationFilterChain.java:{n})",
    "java.base/java.lang.Thread.run(Thread.java:{n})",
    "com.zaxxer.hikari.pool.HikariPool.getConnection(HikariPool.java:{n})",
]


class Gen:
    def __init__(self, seed):
        self.r = random.Random(seed)
        self.t = 1795845600.0  # 2026-11-28 10:00:00 local, as a float of seconds
        self.line_no = 0

    def ip(self):
        r = self.r
        return f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}"

    def fill(self, template):
        r = self.r
        return template.format(
            id=r.randrange(100000, 9999999), id2=r.randrange(100000, 9999999),
            user=r.randrange(1000, 99999), ip=self.ip(), n=r.randrange(1, 500),
            ms=r.randrange(1, 900), slow=r.randrange(1000, 30000), p=r.randrange(12),
            path=r.choice(PATHS).replace("{id}", str(r.randrange(1, 99999))),
            method=r.choice(["GET", "GET", "GET", "POST", "PUT", "DELETE"]),
            status=r.choices([200, 201, 204, 302, 400, 404, 500, 502, 503],
                             [70, 5, 5, 3, 5, 9, 1, 1, 1])[0],
            bytes=r.randrange(0, 50000), amount=f"{r.randrange(1, 99999)}.{r.randrange(100):02d}",
            trace=f"{r.getrandbits(64):016x}",
            code=r.choice(["CB05", "AU51", "RF12", "XX999"]),
        )

    def head(self, level):
        self.t += self.r.random() * 0.004
        t = self.t
        tm = time.gmtime(t)
        ms = int((t - int(t)) * 1000)
        return (f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d} {tm.tm_hour:02d}:"
                f"{tm.tm_min:02d}:{tm.tm_sec:02d}.{ms:03d} {level:>5} 4242 --- "
                f"[{self.r.choice(THREADS):>15}] {self.r.choice(LOGGERS):<40} : ")

    def event(self):
        """One log event: a list of byte lines (without newlines)."""
        r = self.r
        self.line_no += 1
        x = r.random()
        if x < 0.005:
            message, exception = r.choice(ERRORS)
            lines = [self.head("ERROR") + self.fill(message)]
            if r.random() < 0.8:
                lines.append(self.fill(exception))
                for _ in range(r.randrange(4, 25)):
                    lines.append("\tat " + self.fill(r.choice(FRAMES)))
                if r.random() < 0.5:
                    lines.append("Caused by: " + self.fill(r.choice(ERRORS)[1]))
                    lines.append("\t... " + str(r.randrange(10, 80)) + " common frames omitted")
            else:
                lines[0] += " - " + self.fill(exception)
        elif x < 0.035:
            lines = [self.head("WARN") + self.fill(r.choice(WARNS))]
        elif x < 0.735:
            lines = [self.head("INFO") + self.fill(r.choice(INFOS))]
        else:
            lines = [self.head("DEBUG") + self.fill(r.choice(DEBUGS))]
        out = [line.encode() for line in lines]
        if r.random() < 1 / 10000:
            items = ",".join(f'{{"sku":{r.randrange(10**6)},"qty":{r.randrange(1, 9)}}}'
                             for _ in range(700))
            out[0] += b' payload={"items":[' + items.encode() + b"]}"
        if r.random() < 1 / 7000:
            cut = r.randrange(len(out[0]) // 2, len(out[0]))
            out[0] = out[0][:cut] + b"\xff" + out[0][cut:]
        return out


def write_file(args):
    gen = Gen(args.seed)
    target = args.size_mb * 1024 * 1024
    written = 0
    out = sys.stdout.buffer
    batch = []
    while written < target:
        lines = gen.event()
        for line in lines:
            batch.append(line)
            written += len(line) + 1
        if len(batch) >= 4096:
            out.write(b"\n".join(batch) + b"\n")
            batch.clear()
    if batch:
        out.write(b"\n".join(batch) + b"\n")


def follow(args):
    """Appends `rate` lines per second to stdout in 10 ms ticks, flushed each tick.

    The lines are replayed from a pool generated up front, so that the writer itself costs
    little. Each tick starts with one probe line, `LAGPROBE written_ns=<ns>`, carrying its
    write time, so a reader can measure the lag from write to match.
    """
    gen = Gen(args.seed)
    pool = []
    while len(pool) < 100_000:
        pool.extend(gen.event())
    out = sys.stdout.buffer
    per_tick = max(1, args.follow_rate // 100)
    start = time.monotonic()
    tick = 0
    cursor = 0
    while time.monotonic() - start < args.duration:
        if cursor + per_tick > len(pool):
            cursor = 0
        batch = pool[cursor:cursor + per_tick - 1]
        cursor += per_tick - 1
        probe = b"LAGPROBE written_ns=%d" % time.time_ns()
        out.write(probe + b"\n" + b"\n".join(batch) + b"\n")
        out.flush()
        tick += 1
        delay = start + tick * 0.01 - time.monotonic()
        if delay > 0:
            time.sleep(delay)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=500)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--follow-rate", type=int, default=0)
    parser.add_argument("--duration", type=float, default=30)
    args = parser.parse_args()
    if args.follow_rate:
        follow(args)
    else:
        write_file(args)


if __name__ == "__main__":
    main()
