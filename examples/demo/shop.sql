-- The demo's orders database (examples/demo.sh, tests/e2e/84-examples). Times are UTC.
CREATE TABLE orders (
  id          integer PRIMARY KEY,
  created_at  timestamptz NOT NULL,
  amount_eur  numeric(10, 2) NOT NULL,
  status      text NOT NULL CHECK (status IN ('paid', 'failed', 'abandoned'))
);
CREATE TABLE payments (
  id          serial PRIMARY KEY,
  order_id    integer NOT NULL REFERENCES orders(id),
  provider    text NOT NULL,
  status      text NOT NULL CHECK (status IN ('ok', 'failed')),
  error       text,
  created_at  timestamptz NOT NULL
);
INSERT INTO orders VALUES
  (10380, '2026-12-05 01:58:00+00', 42.00, 'paid'),
  (10381, '2026-12-05 02:04:10+00', 18.50, 'paid'),
  (10382, '2026-12-05 02:12:37+00', 25.00, 'failed'),
  (10383, '2026-12-05 02:13:11+00', 61.20, 'failed'),
  (10384, '2026-12-05 02:14:49+00', 12.99, 'failed'),
  (10385, '2026-12-05 02:16:25+00', 75.00, 'failed'),
  (10386, '2026-12-05 02:17:02+00', 33.30, 'abandoned'),
  (10387, '2026-12-05 02:25:40+00', 99.90, 'paid');
INSERT INTO payments (order_id, provider, status, error, created_at) VALUES
  (10380, 'acmepay',   'ok',     NULL,                   '2026-12-05 01:58:02+00'),
  (10381, 'paybridge', 'ok',     NULL,                   '2026-12-05 02:04:11+00'),
  (10382, 'acmepay',   'failed', 'db timeout after 30s', '2026-12-05 02:13:07+00'),
  (10383, 'acmepay',   'failed', 'db timeout after 30s', '2026-12-05 02:13:41+00'),
  (10384, 'paybridge', 'failed', 'db timeout after 30s', '2026-12-05 02:15:19+00'),
  (10385, 'acmepay',   'failed', 'db timeout after 30s', '2026-12-05 02:16:55+00'),
  (10386, 'acmepay',   'failed', 'db timeout after 30s', '2026-12-05 02:18:40+00'),
  (10386, 'acmepay',   'failed', 'db timeout after 30s', '2026-12-05 02:19:52+00'),
  (10386, 'paybridge', 'failed', 'db timeout after 30s', '2026-12-05 02:21:30+00'),
  (10387, 'acmepay',   'ok',     NULL,                   '2026-12-05 02:25:47+00');
-- The sql agent's login: it may read, nothing else (and the MCP server runs every query in a
-- READ ONLY transaction besides).
CREATE ROLE sql_agent LOGIN PASSWORD 'demo-only-password';
GRANT SELECT ON orders, payments TO sql_agent;
