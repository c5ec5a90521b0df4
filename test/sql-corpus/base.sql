SELECT 1
SELECT * FROM events
SELECT a, b FROM events WHERE a > 1 ORDER BY b DESC LIMIT 10
SELECT count() FROM events e
SELECT e.id FROM events AS e
SELECT events.id FROM events
SELECT * FROM tinybird.pipe_stats_rt
SELECT * FROM tinybird.pipe_stats_rt AS p WHERE p.duration > 1
SELECT * FROM roost.audit_log LIMIT 5
SELECT * FROM `events`
SELECT * FROM "events"
SELECT * FROM `tinybird`.`pipe_stats_rt`
SELECT * FROM "tinybird"."pipe_stats_rt"
SELECT * FROM `my table`
SELECT * FROM events, users
SELECT * FROM events e, users u WHERE e.uid = u.id
SELECT * FROM events, users, sessions
SELECT * FROM events JOIN users ON events.uid = users.id
SELECT * FROM events INNER JOIN users ON events.uid = users.id
SELECT * FROM events LEFT JOIN users ON events.uid = users.id
SELECT * FROM events LEFT OUTER JOIN users u ON events.uid = u.id
SELECT * FROM events RIGHT JOIN users USING (id)
SELECT * FROM events FULL OUTER JOIN users USING id
SELECT * FROM events CROSS JOIN users
SELECT * FROM events ANY LEFT JOIN users USING id
SELECT * FROM events ALL INNER JOIN users USING id
SELECT * FROM events ASOF JOIN users ON events.id = users.id AND events.ts >= users.ts
SELECT * FROM events LEFT SEMI JOIN users USING id
SELECT * FROM events RIGHT ANTI JOIN users USING id
SELECT * FROM events GLOBAL LEFT JOIN users USING id
SELECT * FROM events PASTE JOIN users
SELECT * FROM events e JOIN users u ON e.uid = u.id JOIN sessions s ON s.uid = u.id
SELECT * FROM events e JOIN users u ON e.uid = u.id LEFT JOIN tinybird.pipe_stats_rt p ON p.id = e.id
SELECT * FROM events ARRAY JOIN tags
SELECT * FROM events ARRAY JOIN tags AS tag, vals AS v
SELECT * FROM events LEFT ARRAY JOIN tags AS tag
SELECT * FROM events ARRAY JOIN tags AS tag JOIN users ON users.id = events.uid
SELECT * FROM events ARRAY JOIN arrayEnumerate(tags) AS i
SELECT * FROM (SELECT * FROM events)
SELECT * FROM (SELECT * FROM events) AS x
SELECT * FROM (SELECT * FROM events) x JOIN (SELECT * FROM users) y ON x.uid = y.id
SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM events)))
SELECT * FROM ((SELECT * FROM events))
SELECT * FROM (SELECT a FROM events UNION ALL SELECT a FROM users)
SELECT (SELECT max(a) FROM events) AS m
SELECT (SELECT max(a) FROM events) + (SELECT min(b) FROM users)
SELECT a FROM events WHERE a = (SELECT max(a) FROM users)
SELECT a FROM events WHERE uid IN (SELECT id FROM users)
SELECT a FROM events WHERE uid NOT IN (SELECT id FROM users WHERE x IN (SELECT x FROM sessions))
SELECT a FROM events WHERE uid GLOBAL IN (SELECT id FROM users)
SELECT a FROM events WHERE uid GLOBAL NOT IN (SELECT id FROM users)
SELECT a FROM events WHERE uid IN users
SELECT a FROM events WHERE uid NOT IN users
SELECT a FROM events WHERE uid GLOBAL IN users
SELECT a FROM events WHERE uid IN tinybird.pipe_stats_rt
SELECT a FROM events WHERE uid IN (users)
SELECT a FROM events WHERE uid IN (1, 2, 3)
SELECT a FROM events WHERE (uid, a) IN ((1, 2), (3, 4))
SELECT a FROM events WHERE uid IN [1, 2]
SELECT a FROM events WHERE uid IN tuple(1, 2)
SELECT a FROM events WHERE EXISTS (SELECT 1 FROM users WHERE users.id = events.uid)
SELECT a FROM events WHERE NOT EXISTS (SELECT 1 FROM users)
WITH c_a AS (SELECT * FROM events) SELECT * FROM c_a
WITH c_a AS (SELECT * FROM events), c_b AS (SELECT * FROM c_a JOIN users ON 1) SELECT * FROM c_b
WITH c_a AS (SELECT * FROM events) SELECT * FROM c_a JOIN users ON c_a.uid = users.id
WITH c_a AS (SELECT * FROM events) SELECT * FROM c_a WHERE uid IN (SELECT id FROM c_a)
WITH c_a AS (SELECT * FROM events) SELECT * FROM (SELECT * FROM c_a)
WITH c_a AS (SELECT 1) SELECT * FROM c_a UNION ALL SELECT * FROM c_a
WITH 5 AS five SELECT five FROM events
WITH (SELECT max(a) FROM users) AS m SELECT * FROM events WHERE a = m
WITH [1, 2, 3] AS arr SELECT arrayJoin(arr)
WITH c_a AS (SELECT * FROM events), 10 AS n SELECT * FROM c_a LIMIT n
WITH c_x AS (WITH c_y AS (SELECT * FROM users) SELECT * FROM c_y) SELECT * FROM c_x
SELECT * FROM events UNION ALL SELECT * FROM users
SELECT * FROM events UNION DISTINCT SELECT * FROM users
SELECT a FROM events INTERSECT SELECT a FROM users
SELECT a FROM events EXCEPT SELECT a FROM users
(SELECT a FROM events) UNION ALL (SELECT a FROM users)
SELECT a FROM events UNION ALL SELECT a FROM users UNION ALL SELECT a FROM sessions
SELECT * FROM numbers(10)
SELECT * FROM numbers(5, 10) AS n
SELECT * FROM numbers_mt(100)
SELECT * FROM zeros(3)
SELECT * FROM generateRandom('a Int8, b String', 1, 10, 2) LIMIT 3
SELECT * FROM values('a Int8, b String', (1, 'x'), (2, 'y'))
SELECT * FROM numbers(10) JOIN events ON number = events.id
SELECT * FROM events WHERE id IN (SELECT number FROM numbers(10))
SELECT * FROM generate_series(1, 10)
SELECT number FROM numbers(10) ORDER BY number WITH FILL FROM 0 TO 20 STEP 2
SELECT extract(DAY FROM toDate('2020-01-02'))
SELECT EXTRACT(YEAR FROM ts) FROM events
SELECT substring(s FROM 2 FOR 3) FROM events
SELECT trim(BOTH ' ' FROM s), trim(LEADING 'x' FROM s) FROM events
SELECT position('a' IN s) FROM events
SELECT CAST(a AS String), CAST(b AS Nullable(Int64)), a::UInt8, CAST(c, 'Array(String)') FROM events
SELECT CAST(x AS Tuple(a String, b Int32)) FROM events
SELECT arrayMap(x -> x * 2, tags), arrayFilter((x, y) -> x > y, a, b) FROM events
SELECT sumIf(a, b > 1), countIf(b), uniqMerge(s), avgState(a), sumOrNull(a), groupArrayDistinct(a) FROM events
SELECT quantile(0.9)(a), quantilesIf(0.5, 0.9)(a, b > 0), topK(5)(s) FROM events
SELECT count(*), COUNT(DISTINCT a), Sum(a), MAX(b) FROM events
SELECT a, row_number() OVER (PARTITION BY b ORDER BY c) FROM events
SELECT sum(a) OVER w FROM events WINDOW w AS (PARTITION BY b ORDER BY c ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
SELECT * EXCEPT (a) FROM events
SELECT * REPLACE (a + 1 AS a) FROM events
SELECT * APPLY(toString) FROM events
SELECT COLUMNS('^a') FROM events
SELECT events.* FROM events JOIN users ON 1
SELECT a FROM events GROUP BY a WITH TOTALS HAVING count() > 1
SELECT a FROM events GROUP BY ROLLUP(a, b)
SELECT a FROM events GROUP BY GROUPING SETS ((a), (b))
SELECT a FROM events LIMIT 2 BY a
SELECT a FROM events ORDER BY a LIMIT 10 OFFSET 5
SELECT a FROM events LIMIT 5, 10
SELECT a FROM events FINAL
SELECT a FROM events AS e FINAL WHERE e.a > 0
SELECT a FROM events SAMPLE 0.1
SELECT a FROM events PREWHERE a > 1 WHERE b < 2
SELECT DISTINCT a FROM events
SELECT DISTINCT ON (a) a, b FROM events
SELECT TOP 5 a FROM events
SELECT a FROM events QUALIFY row_number() OVER (ORDER BY a) = 1
SELECT if(a > 1, 'x', 'y'), multiIf(a = 1, 'a', a = 2, 'b', 'c'), CASE WHEN a THEN 1 ELSE 2 END FROM events
SELECT CASE a WHEN 1 THEN 'one' ELSE 'other' END FROM events
SELECT a FROM events WHERE a BETWEEN 1 AND 10 AND b LIKE '%x%' AND c NOT ILIKE 'y' AND d IS NOT NULL
SELECT toStartOfInterval(ts, INTERVAL 1 HOUR), now() - INTERVAL 1 DAY FROM events
SELECT dictGet('dict_countries', 'name', toUInt64(cid)) FROM events
SELECT dictGetOrDefault('dict_countries', 'name', toUInt64(cid), 'x') FROM events
SELECT joinGet('join_users', 'name', uid) FROM events
SELECT 'FROM system.tables' FROM events
SELECT `from`, "select" FROM events
SELECT a AS `b c` FROM events
SELECT t.1, tupleElement(t, 2), m['k'], arr[1] FROM events
SELECT map('a', 1), [1, 2], (1, 2)
SELECT $$a 'quoted' text$$, $tag$x$tag$
SELECT 0x1F, 0b101, 1e10, 1_000_000, .5, 1.5e-3, inf, nan
SELECT a FROM events -- trailing comment
SELECT a /* inline */ FROM /* another */ events
SELECT a FROM events # hash comment
SELECT a FROM /* /* nested */ comment */ events
SELECT a FROM events;
SELECT a FROM events FORMAT JSON
SELECT a FROM events FORMAT CSVWithNames;
SELECT a FROM events SETTINGS max_threads = 2
SELECT a FROM events SETTINGS max_threads = 1, join_use_nulls = 1
FROM events SELECT a
FROM events SELECT a WHERE uid IN users
SELECT a FROM events WHERE a IN (SELECT a FROM users UNION ALL SELECT a FROM sessions)
SELECT * FROM events WHERE uid IN (SELECT uid FROM (SELECT uid FROM sessions JOIN users ON sessions.uid = users.id))
SELECT * FROM (SELECT uid, count() AS c FROM events GROUP BY uid) AS t WHERE c > (SELECT avg(c) FROM (SELECT count() AS c FROM users GROUP BY id))
SELECT toDate(ts) AS d, countIf(type = 'view') AS views FROM events WHERE d >= today() - 7 GROUP BY d ORDER BY d
SELECT lower(s), upper(s), concat(a, '-', b), a || b, replaceAll(s, 'a', 'b'), splitByChar(',', s) FROM events
SELECT JSONExtractString(payload, 'x'), JSONExtract(payload, 'y', 'Int64') FROM events
SELECT formatDateTime(ts, '%Y'), toUnixTimestamp(ts), parseDateTimeBestEffort(s) FROM events
SELECT greatest(a, b), least(a, b), abs(a), round(b, 2), intDiv(a, 2), a % 3 FROM events
SELECT uniqExact(uid), uniqCombined(uid), argMax(a, ts), anyLast(a) FROM events
SELECT groupArray(a), groupUniqArray(b), arraySort(groupArray(c)) FROM events
SELECT a FROM events WHERE match(s, '^x') AND has(tags, 'y') AND startsWith(s, 'z')
SELECT sipHash64(a), cityHash64(b), MD5(s), hex(a) FROM events
SELECT a FROM tinybird.pipe_stats_rt WHERE pipe_name IN (SELECT pipe_name FROM tinybird.datasources_ops_log)
SELECT * FROM roost.audit_log a JOIN tinybird.pipe_stats_rt p ON a.ts = p.ts
SELECT a FROM `Events2`
SELECT a FROM events WHERE a IN (SELECT a FROM `Events2`)
SELECT * FROM events AS e1 JOIN events AS e2 ON e1.id = e2.parent
SELECT * FROM events e1, events e2 WHERE e1.id = e2.parent
SELECT count() FROM (SELECT 1 FROM events) AS x, (SELECT 2 FROM users) AS y
SELECT a FROM events WHERE a IN (SELECT a FROM users) OR b IN (SELECT b FROM sessions)
SELECT arrayJoin([1, 2, 3]) AS x FROM events
SELECT a FROM events ORDER BY a ASC NULLS FIRST, b DESC NULLS LAST
SELECT a FROM events ORDER BY a WITH FILL
SELECT a FROM events ORDER BY a LIMIT 10 WITH TIES
SELECT throwIf(a > 100), version(), timezone() FROM events
SELECT toDecimal64(a, 2), toFixedString(s, 3), reinterpretAsString(a) FROM events
SELECT * FROM events WHERE (a, b) IN (SELECT a, b FROM users)
SELECT a FROM (SELECT a FROM events ORDER BY a LIMIT 10) ORDER BY a DESC
SELECT a FROM events WHERE a > ALL (SELECT a FROM users)
SELECT a FROM events WHERE a = ANY (SELECT a FROM users)
SELECT count() FROM events WHERE ts > now() - toIntervalDay(1) SETTINGS max_threads = 4
SELECT a FROM events WHERE not(a) AND and(b, c) OR or(d, e)
SELECT * FROM events JOIN users ON events.uid = users.id AND users.active = 1 WHERE events.a > 0
SELECT * FROM events AS e LEFT JOIN (SELECT id, name FROM users) AS u ON e.uid = u.id LEFT JOIN (SELECT * FROM sessions) s USING (uid)
