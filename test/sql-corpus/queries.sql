SELECT 1
-- ----
SELECT  1
-- ----
select 1
-- ----
SELECT * FROM events
-- ----
SELECT
*	FROM /* c */ events
-- ----
select * from events
-- ----
SELECT a, b FROM events WHERE a > 1 ORDER BY b DESC LIMIT 10
-- ----
SELECT
-- note
 a, 
 b  FROM
events	WHERE /* c */ a
-- note
 > 
 1  ORDER
BY	b /* c */ DESC
-- note
 LIMIT 
 10
-- ----
select a, b from events where a > 1 order by b DESC limit 10
-- ----
SELECT count() FROM events e
-- ----
SELECT  count()
FROM	events /* c */ e
-- ----
select count() from events e
-- ----
SELECT e.id FROM events AS e
-- ----
SELECT
-- note
 e.id 
 FROM  events
AS	e
-- ----
select e.id from events as e
-- ----
SELECT events.id FROM events
-- ----
SELECT /* c */ events.id
-- note
 FROM 
 events
-- ----
select events.id from events
-- ----
SELECT * FROM tinybird.pipe_stats_rt
-- ----
SELECT  *
FROM	tinybird /* x */ .
pipe_stats_rt
-- ----
SELECT * FROM `tinybird`.`pipe_stats_rt`
-- ----
select * from tinybird.pipe_stats_rt
-- ----
SELECT * FROM tinybird.pipe_stats_rt AS p WHERE p.duration > 1
-- ----
SELECT /* c */ *
-- note
 FROM 
 tinybird /* x */ .
pipe_stats_rt  AS
p	WHERE /* c */ p.duration
-- note
 > 
 1
-- ----
SELECT * FROM `tinybird`.`pipe_stats_rt` AS p WHERE p.duration > 1
-- ----
select * from tinybird.pipe_stats_rt as p where p.duration > 1
-- ----
SELECT * FROM roost.audit_log LIMIT 5
-- ----
SELECT  *
FROM	roost /* x */ .
audit_log /* c */ LIMIT
-- note
 5
-- ----
SELECT * FROM `roost`.`audit_log` LIMIT 5
-- ----
select * from roost.audit_log limit 5
-- ----
SELECT * FROM `events`
-- ----
SELECT 
 *  FROM
`events`
-- ----
select * from `events`
-- ----
SELECT * FROM "events"
-- ----
SELECT	* /* c */ FROM
-- note
 "events"
-- ----
select * from "events"
-- ----
SELECT * FROM `tinybird`.`pipe_stats_rt`
-- ----
SELECT 
 *  FROM
`tinybird`.`pipe_stats_rt`
-- ----
select * from `tinybird`.`pipe_stats_rt`
-- ----
SELECT * FROM "tinybird"."pipe_stats_rt"
-- ----
SELECT	* /* c */ FROM
-- note
 "tinybird"."pipe_stats_rt"
-- ----
select * from "tinybird"."pipe_stats_rt"
-- ----
SELECT * FROM `my table`
-- ----
SELECT 
 *  FROM
`my table`
-- ----
select * from `my table`
-- ----
SELECT * FROM events, users
-- ----
SELECT	* /* c */ FROM
-- note
 events, 
 users
-- ----
select * from events, users
-- ----
SELECT * FROM events e, users u WHERE e.uid = u.id
-- ----
SELECT  *
FROM	events /* c */ e,
-- note
 users 
 u  WHERE
e.uid	= /* c */ u.id
-- ----
select * from events e, users u where e.uid = u.id
-- ----
SELECT * FROM events, users, sessions
-- ----
SELECT
-- note
 * 
 FROM  events,
users,	sessions
-- ----
select * from events, users, sessions
-- ----
SELECT * FROM events JOIN users ON events.uid = users.id
-- ----
SELECT /* c */ *
-- note
 FROM 
 events  JOIN
users	ON /* c */ events.uid
-- note
 = 
 users.id
-- ----
select * from events join users on events.uid = users.id
-- ----
SELECT * FROM events INNER JOIN users ON events.uid = users.id
-- ----
SELECT  *
FROM	events /* c */ INNER
-- note
 JOIN 
 users  ON
events.uid	= /* c */ users.id
-- ----
select * from events inner join users on events.uid = users.id
-- ----
SELECT * FROM events LEFT JOIN users ON events.uid = users.id
-- ----
SELECT
-- note
 * 
 FROM  events
LEFT	JOIN /* c */ users
-- note
 ON 
 events.uid  =
users.id
-- ----
select * from events left join users on events.uid = users.id
-- ----
SELECT * FROM events LEFT OUTER JOIN users u ON events.uid = u.id
-- ----
SELECT	* /* c */ FROM
-- note
 events 
 LEFT  OUTER
JOIN	users /* c */ u
-- note
 ON 
 events.uid  =
u.id
-- ----
select * from events left OUTER join users u on events.uid = u.id
-- ----
SELECT * FROM events RIGHT JOIN users USING (id)
-- ----
SELECT	* /* c */ FROM
-- note
 events 
 RIGHT  JOIN
users	USING /* c */ (id)
-- ----
select * from events RIGHT join users using (id)
-- ----
SELECT * FROM events FULL OUTER JOIN users USING id
-- ----
SELECT
-- note
 * 
 FROM  events
FULL	OUTER /* c */ JOIN
-- note
 users 
 USING  id
-- ----
select * from events FULL OUTER join users using id
-- ----
SELECT * FROM events CROSS JOIN users
-- ----
SELECT
*	FROM /* c */ events
-- note
 CROSS 
 JOIN  users
-- ----
select * from events cross join users
-- ----
SELECT * FROM events ANY LEFT JOIN users USING id
-- ----
SELECT
*	FROM /* c */ events
-- note
 ANY 
 LEFT  JOIN
users	USING /* c */ id
-- ----
select * from events any left join users using id
-- ----
SELECT * FROM events ALL INNER JOIN users USING id
-- ----
SELECT
-- note
 * 
 FROM  events
ALL	INNER /* c */ JOIN
-- note
 users 
 USING  id
-- ----
select * from events all inner join users using id
-- ----
SELECT * FROM events ASOF JOIN users ON events.id = users.id AND events.ts >= users.ts
-- ----
SELECT
*	FROM /* c */ events
-- note
 ASOF 
 JOIN  users
ON	events.id /* c */ =
-- note
 users.id 
 AND  events.ts
>=	users.ts
-- ----
select * from events ASOF join users on events.id = users.id AND events.ts >= users.ts
-- ----
SELECT * FROM events LEFT SEMI JOIN users USING id
-- ----
SELECT /* c */ *
-- note
 FROM 
 events  LEFT
SEMI	JOIN /* c */ users
-- note
 USING 
 id
-- ----
select * from events left SEMI join users using id
-- ----
SELECT * FROM events RIGHT ANTI JOIN users USING id
-- ----
SELECT  *
FROM	events /* c */ RIGHT
-- note
 ANTI 
 JOIN  users
USING	id
-- ----
select * from events RIGHT ANTI join users using id
-- ----
SELECT * FROM events GLOBAL LEFT JOIN users USING id
-- ----
SELECT /* c */ *
-- note
 FROM 
 events  GLOBAL
LEFT	JOIN /* c */ users
-- note
 USING 
 id
-- ----
select * from events global left join users using id
-- ----
SELECT * FROM events PASTE JOIN users
-- ----
SELECT  *
FROM	events /* c */ PASTE
-- note
 JOIN 
 users
-- ----
select * from events PASTE join users
-- ----
SELECT * FROM events e JOIN users u ON e.uid = u.id JOIN sessions s ON s.uid = u.id
-- ----
SELECT  *
FROM	events /* c */ e
-- note
 JOIN 
 users  u
ON	e.uid /* c */ =
-- note
 u.id 
 JOIN  sessions
s	ON /* c */ s.uid
-- note
 = 
 u.id
-- ----
select * from events e join users u on e.uid = u.id join sessions s on s.uid = u.id
-- ----
SELECT * FROM events e JOIN users u ON e.uid = u.id LEFT JOIN tinybird.pipe_stats_rt p ON p.id = e.id
-- ----
SELECT  *
FROM	events /* c */ e
-- note
 JOIN 
 users  u
ON	e.uid /* c */ =
-- note
 u.id 
 LEFT  JOIN
tinybird /* x */ .
pipe_stats_rt	p /* c */ ON
-- note
 p.id 
 =  e.id
-- ----
SELECT * FROM events e JOIN users u ON e.uid = u.id LEFT JOIN `tinybird`.`pipe_stats_rt` p ON p.id = e.id
-- ----
select * from events e join users u on e.uid = u.id left join tinybird.pipe_stats_rt p on p.id = e.id
-- ----
SELECT * FROM events ARRAY JOIN tags
-- ----
SELECT
*	FROM /* c */ events
-- note
 ARRAY 
 JOIN  tags
-- ----
select * from events array join tags
-- ----
SELECT * FROM events ARRAY JOIN tags AS tag, vals AS v
-- ----
SELECT
*	FROM /* c */ events
-- note
 ARRAY 
 JOIN  tags
AS	tag, /* c */ vals
-- note
 AS 
 v
-- ----
select * from events array join tags as tag, vals as v
-- ----
SELECT * FROM events LEFT ARRAY JOIN tags AS tag
-- ----
SELECT  *
FROM	events /* c */ LEFT
-- note
 ARRAY 
 JOIN  tags
AS	tag
-- ----
select * from events left array join tags as tag
-- ----
SELECT * FROM events ARRAY JOIN tags AS tag JOIN users ON users.id = events.uid
-- ----
SELECT /* c */ *
-- note
 FROM 
 events  ARRAY
JOIN	tags /* c */ AS
-- note
 tag 
 JOIN  users
ON	users.id /* c */ =
-- note
 events.uid
-- ----
select * from events array join tags as tag join users on users.id = events.uid
-- ----
SELECT * FROM events ARRAY JOIN arrayEnumerate(tags) AS i
-- ----
SELECT 
 *  FROM
events	ARRAY /* c */ JOIN
-- note
 arrayEnumerate(tags) 
 AS  i
-- ----
select * from events array join arrayEnumerate(tags) as i
-- ----
SELECT * FROM (SELECT * FROM events)
-- ----
SELECT
*	FROM /* c */ (SELECT
-- note
 * 
 FROM  events)
-- ----
select * from (select * from events)
-- ----
SELECT * FROM (SELECT * FROM events) AS x
-- ----
SELECT
*	FROM /* c */ (SELECT
-- note
 * 
 FROM  events)
AS	x
-- ----
select * from (select * from events) as x
-- ----
SELECT * FROM (SELECT * FROM events) x JOIN (SELECT * FROM users) y ON x.uid = y.id
-- ----
SELECT /* c */ *
-- note
 FROM 
 (SELECT  *
FROM	events) /* c */ x
-- note
 JOIN 
 (SELECT  *
FROM	users) /* c */ y
-- note
 ON 
 x.uid  =
y.id
-- ----
select * from (select * from events) x join (select * from users) y on x.uid = y.id
-- ----
SELECT * FROM (SELECT * FROM (SELECT * FROM (SELECT * FROM events)))
-- ----
SELECT	* /* c */ FROM
-- note
 (SELECT 
 *  FROM
(SELECT	* /* c */ FROM
-- note
 (SELECT 
 *  FROM
events)))
-- ----
select * from (select * from (select * from (select * from events)))
-- ----
SELECT * FROM ((SELECT * FROM events))
-- ----
SELECT	* /* c */ FROM
-- note
 ((SELECT 
 *  FROM
events))
-- ----
select * from ((select * from events))
-- ----
SELECT * FROM (SELECT a FROM events UNION ALL SELECT a FROM users)
-- ----
SELECT	* /* c */ FROM
-- note
 (SELECT 
 a  FROM
events	UNION /* c */ ALL
-- note
 SELECT 
 a  FROM
users)
-- ----
select * from (select a from events union all select a from users)
-- ----
SELECT (SELECT max(a) FROM events) AS m
-- ----
SELECT	(SELECT /* c */ max(a)
-- note
 FROM 
 events)  AS
m
-- ----
select (select max(a) from events) as m
-- ----
SELECT (SELECT max(a) FROM events) + (SELECT min(b) FROM users)
-- ----
SELECT	(SELECT /* c */ max(a)
-- note
 FROM 
 events)  +
(SELECT	min(b) /* c */ FROM
-- note
 users)
-- ----
select (select max(a) from events) + (select min(b) from users)
-- ----
SELECT a FROM events WHERE a = (SELECT max(a) FROM users)
-- ----
SELECT 
 a  FROM
events	WHERE /* c */ a
-- note
 = 
 (SELECT  max(a)
FROM	users)
-- ----
select a from events where a = (select max(a) from users)
-- ----
SELECT a FROM events WHERE uid IN (SELECT id FROM users)
-- ----
SELECT /* c */ a
-- note
 FROM 
 events  WHERE
uid	IN /* c */ (SELECT
-- note
 id 
 FROM  users)
-- ----
select a from events where uid in (select id from users)
-- ----
SELECT a FROM events WHERE uid NOT IN (SELECT id FROM users WHERE x IN (SELECT x FROM sessions))
-- ----
SELECT
a	FROM /* c */ events
-- note
 WHERE 
 uid  NOT
IN	(SELECT /* c */ id
-- note
 FROM 
 users  WHERE
x	IN /* c */ (SELECT
-- note
 x 
 FROM  sessions))
-- ----
select a from events where uid not in (select id from users where x in (select x from sessions))
-- ----
SELECT a FROM events WHERE uid GLOBAL IN (SELECT id FROM users)
-- ----
SELECT
a	FROM /* c */ events
-- note
 WHERE 
 uid  GLOBAL
IN	(SELECT /* c */ id
-- note
 FROM 
 users)
-- ----
select a from events where uid global in (select id from users)
-- ----
SELECT a FROM events WHERE uid GLOBAL NOT IN (SELECT id FROM users)
-- ----
SELECT  a
FROM	events /* c */ WHERE
-- note
 uid 
 GLOBAL  NOT
IN	(SELECT /* c */ id
-- note
 FROM 
 users)
-- ----
select a from events where uid global not in (select id from users)
-- ----
SELECT a FROM events WHERE uid IN users
-- ----
SELECT  a
FROM	events /* c */ WHERE
-- note
 uid 
 IN  users
-- ----
select a from events where uid in users
-- ----
SELECT a FROM events WHERE uid NOT IN users
-- ----
SELECT
a	FROM /* c */ events
-- note
 WHERE 
 uid  NOT
IN	users
-- ----
select a from events where uid not in users
-- ----
SELECT a FROM events WHERE uid GLOBAL IN users
-- ----
SELECT /* c */ a
-- note
 FROM 
 events  WHERE
uid	GLOBAL /* c */ IN
-- note
 users
-- ----
select a from events where uid global in users
-- ----
SELECT a FROM events WHERE uid IN tinybird.pipe_stats_rt
-- ----
SELECT 
 a  FROM
events	WHERE /* c */ uid
-- note
 IN 
 tinybird /* x */ .
pipe_stats_rt
-- ----
SELECT a FROM events WHERE uid IN `tinybird`.`pipe_stats_rt`
-- ----
select a from events where uid in tinybird.pipe_stats_rt
-- ----
SELECT a FROM events WHERE uid IN (users)
-- ----
SELECT  a
FROM	events /* c */ WHERE
-- note
 uid 
 IN  (users)
-- ----
select a from events where uid in (users)
-- ----
SELECT a FROM events WHERE uid IN (1, 2, 3)
-- ----
SELECT
a	FROM /* c */ events
-- note
 WHERE 
 uid  IN
(1,	2, /* c */ 3)
-- ----
select a from events where uid in (1, 2, 3)
-- ----
SELECT a FROM events WHERE (uid, a) IN ((1, 2), (3, 4))
-- ----
SELECT
-- note
 a 
 FROM  events
WHERE	(uid, /* c */ a)
-- note
 IN 
 ((1,  2),
(3,	4))
-- ----
select a from events where (uid, a) in ((1, 2), (3, 4))
-- ----
SELECT a FROM events WHERE uid IN [1, 2]
-- ----
SELECT /* c */ a
-- note
 FROM 
 events  WHERE
uid	IN /* c */ [1,
-- note
 2]
-- ----
select a from events where uid in [1, 2]
-- ----
SELECT a FROM events WHERE uid IN tuple(1, 2)
-- ----
SELECT 
 a  FROM
events	WHERE /* c */ uid
-- note
 IN 
 tuple(1,  2)
-- ----
select a from events where uid in tuple(1, 2)
-- ----
SELECT a FROM events WHERE EXISTS (SELECT 1 FROM users WHERE users.id = events.uid)
-- ----
SELECT
a	FROM /* c */ events
-- note
 WHERE 
 EXISTS  (SELECT
1	FROM /* c */ users
-- note
 WHERE 
 users.id  =
events.uid)
-- ----
select a from events where exists (select 1 from users where users.id = events.uid)
-- ----
SELECT a FROM events WHERE NOT EXISTS (SELECT 1 FROM users)
-- ----
SELECT	a /* c */ FROM
-- note
 events 
 WHERE  NOT
EXISTS	(SELECT /* c */ 1
-- note
 FROM 
 users)
-- ----
select a from events where not exists (select 1 from users)
-- ----
WITH c_a AS (SELECT * FROM events) SELECT * FROM c_a
-- ----
WITH  c_a
AS	(SELECT /* c */ *
-- note
 FROM 
 events)  SELECT
*	FROM /* c */ c_a
-- ----
with c_a as (select * from events) select * from c_a
-- ----
WITH c_a AS (SELECT * FROM events), c_b AS (SELECT * FROM c_a JOIN users ON 1) SELECT * FROM c_b
-- ----
WITH
-- note
 c_a 
 AS  (SELECT
*	FROM /* c */ events),
-- note
 c_b 
 AS  (SELECT
*	FROM /* c */ c_a
-- note
 JOIN 
 users  ON
1)	SELECT /* c */ *
-- note
 FROM 
 c_b
-- ----
with c_a as (select * from events), c_b as (select * from c_a join users on 1) select * from c_b
-- ----
WITH c_a AS (SELECT * FROM events) SELECT * FROM c_a JOIN users ON c_a.uid = users.id
-- ----
WITH  c_a
AS	(SELECT /* c */ *
-- note
 FROM 
 events)  SELECT
*	FROM /* c */ c_a
-- note
 JOIN 
 users  ON
c_a.uid	= /* c */ users.id
-- ----
with c_a as (select * from events) select * from c_a join users on c_a.uid = users.id
-- ----
WITH c_a AS (SELECT * FROM events) SELECT * FROM c_a WHERE uid IN (SELECT id FROM c_a)
-- ----
WITH
-- note
 c_a 
 AS  (SELECT
*	FROM /* c */ events)
-- note
 SELECT 
 *  FROM
c_a	WHERE /* c */ uid
-- note
 IN 
 (SELECT  id
FROM	c_a)
-- ----
with c_a as (select * from events) select * from c_a where uid in (select id from c_a)
-- ----
WITH c_a AS (SELECT * FROM events) SELECT * FROM (SELECT * FROM c_a)
-- ----
WITH /* c */ c_a
-- note
 AS 
 (SELECT  *
FROM	events) /* c */ SELECT
-- note
 * 
 FROM  (SELECT
*	FROM /* c */ c_a)
-- ----
with c_a as (select * from events) select * from (select * from c_a)
-- ----
WITH c_a AS (SELECT 1) SELECT * FROM c_a UNION ALL SELECT * FROM c_a
-- ----
WITH
-- note
 c_a 
 AS  (SELECT
1)	SELECT /* c */ *
-- note
 FROM 
 c_a  UNION
ALL	SELECT /* c */ *
-- note
 FROM 
 c_a
-- ----
with c_a as (select 1) select * from c_a union all select * from c_a
-- ----
WITH 5 AS five SELECT five FROM events
-- ----
WITH  5
AS	five /* c */ SELECT
-- note
 five 
 FROM  events
-- ----
with 5 as five select five from events
-- ----
WITH (SELECT max(a) FROM users) AS m SELECT * FROM events WHERE a = m
-- ----
WITH
(SELECT	max(a) /* c */ FROM
-- note
 users) 
 AS  m
SELECT	* /* c */ FROM
-- note
 events 
 WHERE  a
=	m
-- ----
with (select max(a) from users) as m select * from events where a = m
-- ----
WITH [1, 2, 3] AS arr SELECT arrayJoin(arr)
-- ----
WITH /* c */ [1,
-- note
 2, 
 3]  AS
arr	SELECT /* c */ arrayJoin(arr)
-- ----
with [1, 2, 3] as arr select arrayJoin(arr)
-- ----
WITH c_a AS (SELECT * FROM events), 10 AS n SELECT * FROM c_a LIMIT n
-- ----
WITH
-- note
 c_a 
 AS  (SELECT
*	FROM /* c */ events),
-- note
 10 
 AS  n
SELECT	* /* c */ FROM
-- note
 c_a 
 LIMIT  n
-- ----
with c_a as (select * from events), 10 as n select * from c_a limit n
-- ----
WITH c_x AS (WITH c_y AS (SELECT * FROM users) SELECT * FROM c_y) SELECT * FROM c_x
-- ----
WITH
c_x	AS /* c */ (WITH
-- note
 c_y 
 AS  (SELECT
*	FROM /* c */ users)
-- note
 SELECT 
 *  FROM
c_y)	SELECT /* c */ *
-- note
 FROM 
 c_x
-- ----
with c_x as (with c_y as (select * from users) select * from c_y) select * from c_x
-- ----
SELECT * FROM events UNION ALL SELECT * FROM users
-- ----
SELECT  *
FROM	events /* c */ UNION
-- note
 ALL 
 SELECT  *
FROM	users
-- ----
select * from events union all select * from users
-- ----
SELECT * FROM events UNION DISTINCT SELECT * FROM users
-- ----
SELECT /* c */ *
-- note
 FROM 
 events  UNION
DISTINCT	SELECT /* c */ *
-- note
 FROM 
 users
-- ----
select * from events union distinct select * from users
-- ----
SELECT a FROM events INTERSECT SELECT a FROM users
-- ----
SELECT  a
FROM	events /* c */ INTERSECT
-- note
 SELECT 
 a  FROM
users
-- ----
select a from events INTERSECT select a from users
-- ----
SELECT a FROM events EXCEPT SELECT a FROM users
-- ----
SELECT	a /* c */ FROM
-- note
 events 
 EXCEPT  SELECT
a	FROM /* c */ users
-- ----
select a from events EXCEPT select a from users
-- ----
(SELECT a FROM events) UNION ALL (SELECT a FROM users)
-- ----
(SELECT
-- note
 a 
 FROM  events)
UNION	ALL /* c */ (SELECT
-- note
 a 
 FROM  users)
-- ----
(select a from events) union all (select a from users)
-- ----
SELECT a FROM events UNION ALL SELECT a FROM users UNION ALL SELECT a FROM sessions
-- ----
SELECT
a	FROM /* c */ events
-- note
 UNION 
 ALL  SELECT
a	FROM /* c */ users
-- note
 UNION 
 ALL  SELECT
a	FROM /* c */ sessions
-- ----
select a from events union all select a from users union all select a from sessions
-- ----
SELECT * FROM numbers(10)
-- ----
SELECT
-- note
 * 
 FROM  numbers(10)
-- ----
select * from numbers(10)
-- ----
SELECT * FROM numbers(5, 10) AS n
-- ----
SELECT
*	FROM /* c */ numbers(5,
-- note
 10) 
 AS  n
-- ----
select * from numbers(5, 10) as n
-- ----
SELECT * FROM numbers_mt(100)
-- ----
SELECT
*	FROM /* c */ numbers_mt(100)
-- ----
select * from numbers_mt(100)
-- ----
SELECT * FROM zeros(3)
-- ----
SELECT
-- note
 * 
 FROM  zeros(3)
-- ----
select * from zeros(3)
-- ----
SELECT * FROM generateRandom('a Int8, b String', 1, 10, 2) LIMIT 3
-- ----
SELECT
*	FROM /* c */ generateRandom('a Int8, b String',
-- note
 1, 
 10,  2)
LIMIT	3
-- ----
select * from generateRandom('a Int8, b String', 1, 10, 2) limit 3
-- ----
SELECT * FROM values('a Int8, b String', (1, 'x'), (2, 'y'))
-- ----
SELECT /* c */ *
-- note
 FROM 
 values('a Int8, b String',  (1,
'x'),	(2, /* c */ 'y'))
-- ----
select * from values('a Int8, b String', (1, 'x'), (2, 'y'))
-- ----
SELECT * FROM numbers(10) JOIN events ON number = events.id
-- ----
SELECT
-- note
 * 
 FROM  numbers(10)
JOIN	events /* c */ ON
-- note
 number 
 =  events.id
-- ----
select * from numbers(10) join events on number = events.id
-- ----
SELECT * FROM events WHERE id IN (SELECT number FROM numbers(10))
-- ----
SELECT
*	FROM /* c */ events
-- note
 WHERE 
 id  IN
(SELECT	number /* c */ FROM
-- note
 numbers(10))
-- ----
select * from events where id in (select number from numbers(10))
-- ----
SELECT * FROM generate_series(1, 10)
-- ----
SELECT 
 *  FROM
generate_series(1,	10)
-- ----
select * from generate_series(1, 10)
-- ----
SELECT number FROM numbers(10) ORDER BY number WITH FILL FROM 0 TO 20 STEP 2
-- ----
SELECT /* c */ number
-- note
 FROM 
 numbers(10)  ORDER
BY	number /* c */ WITH
-- note
 FILL 
 FROM  0
TO	20 /* c */ STEP
-- note
 2
-- ----
select number from numbers(10) order by number with FILL from 0 TO 20 STEP 2
-- ----
SELECT extract(DAY FROM toDate('2020-01-02'))
-- ----
SELECT 
 extract(DAY  FROM
toDate('2020-01-02'))
-- ----
select extract(DAY from toDate('2020-01-02'))
-- ----
SELECT EXTRACT(YEAR FROM ts) FROM events
-- ----
SELECT	EXTRACT(YEAR /* c */ FROM
-- note
 ts) 
 FROM  events
-- ----
select EXTRACT(YEAR from ts) from events
-- ----
SELECT substring(s FROM 2 FOR 3) FROM events
-- ----
SELECT
substring(s	FROM /* c */ 2
-- note
 FOR 
 3)  FROM
events
-- ----
select substring(s from 2 FOR 3) from events
-- ----
SELECT trim(BOTH ' ' FROM s), trim(LEADING 'x' FROM s) FROM events
-- ----
SELECT	trim(BOTH /* c */ ' '
-- note
 FROM 
 s),  trim(LEADING
'x'	FROM /* c */ s)
-- note
 FROM 
 events
-- ----
select trim(BOTH ' ' from s), trim(LEADING 'x' from s) from events
-- ----
SELECT position('a' IN s) FROM events
-- ----
SELECT  position('a'
IN	s) /* c */ FROM
-- note
 events
-- ----
select position('a' in s) from events
-- ----
SELECT CAST(a AS String), CAST(b AS Nullable(Int64)), a::UInt8, CAST(c, 'Array(String)') FROM events
-- ----
SELECT 
 CAST(a  AS
String),	CAST(b /* c */ AS
-- note
 Nullable(Int64)), 
 a::UInt8,  CAST(c,
'Array(String)')	FROM /* c */ events
-- ----
select CAST(a as String), CAST(b as Nullable(Int64)), a::UInt8, CAST(c, 'Array(String)') from events
-- ----
SELECT CAST(x AS Tuple(a String, b Int32)) FROM events
-- ----
SELECT
-- note
 CAST(x 
 AS  Tuple(a
String,	b /* c */ Int32))
-- note
 FROM 
 events
-- ----
select CAST(x as Tuple(a String, b Int32)) from events
-- ----
SELECT arrayMap(x -> x * 2, tags), arrayFilter((x, y) -> x > y, a, b) FROM events
-- ----
SELECT  arrayMap(x
->	x /* c */ *
-- note
 2, 
 tags),  arrayFilter((x,
y)	-> /* c */ x
-- note
 > 
 y,  a,
b)	FROM /* c */ events
-- ----
select arrayMap(x -> x * 2, tags), arrayFilter((x, y) -> x > y, a, b) from events
-- ----
SELECT sumIf(a, b > 1), countIf(b), uniqMerge(s), avgState(a), sumOrNull(a), groupArrayDistinct(a) FROM events
-- ----
SELECT
-- note
 sumIf(a, 
 b  >
1),	countIf(b), /* c */ uniqMerge(s),
-- note
 avgState(a), 
 sumOrNull(a),  groupArrayDistinct(a)
FROM	events
-- ----
select sumIf(a, b > 1), countIf(b), uniqMerge(s), avgState(a), sumOrNull(a), groupArrayDistinct(a) from events
-- ----
SELECT quantile(0.9)(a), quantilesIf(0.5, 0.9)(a, b > 0), topK(5)(s) FROM events
-- ----
SELECT /* c */ quantile(0.9)(a),
-- note
 quantilesIf(0.5, 
 0.9)(a,  b
>	0), /* c */ topK(5)(s)
-- note
 FROM 
 events
-- ----
select quantile(0.9)(a), quantilesIf(0.5, 0.9)(a, b > 0), topK(5)(s) from events
-- ----
SELECT count(*), COUNT(DISTINCT a), Sum(a), MAX(b) FROM events
-- ----
SELECT  count(*),
COUNT(DISTINCT	a), /* c */ Sum(a),
-- note
 MAX(b) 
 FROM  events
-- ----
select count(*), COUNT(distinct a), Sum(a), MAX(b) from events
-- ----
SELECT a, row_number() OVER (PARTITION BY b ORDER BY c) FROM events
-- ----
SELECT
a,	row_number() /* c */ OVER
-- note
 (PARTITION 
 BY  b
ORDER	BY /* c */ c)
-- note
 FROM 
 events
-- ----
select a, row_number() OVER (PARTITION by b order by c) from events
-- ----
SELECT sum(a) OVER w FROM events WINDOW w AS (PARTITION BY b ORDER BY c ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
-- ----
SELECT  sum(a)
OVER	w /* c */ FROM
-- note
 events 
 WINDOW  w
AS	(PARTITION /* c */ BY
-- note
 b 
 ORDER  BY
c	ROWS /* c */ BETWEEN
-- note
 UNBOUNDED 
 PRECEDING  AND
CURRENT	ROW)
-- ----
select sum(a) OVER w from events WINDOW w as (PARTITION by b order by c ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
-- ----
SELECT * EXCEPT (a) FROM events
-- ----
SELECT /* c */ *
-- note
 EXCEPT 
 (a)  FROM
events
-- ----
select * EXCEPT (a) from events
-- ----
SELECT * REPLACE (a + 1 AS a) FROM events
-- ----
SELECT	* /* c */ REPLACE
-- note
 (a 
 +  1
AS	a) /* c */ FROM
-- note
 events
-- ----
select * REPLACE (a + 1 as a) from events
-- ----
SELECT * APPLY(toString) FROM events
-- ----
SELECT 
 *  APPLY(toString)
FROM	events
-- ----
select * APPLY(toString) from events
-- ----
SELECT COLUMNS('^a') FROM events
-- ----
SELECT /* c */ COLUMNS('^a')
-- note
 FROM 
 events
-- ----
select COLUMNS('^a') from events
-- ----
SELECT events.* FROM events JOIN users ON 1
-- ----
SELECT  events.*
FROM	events /* c */ JOIN
-- note
 users 
 ON  1
-- ----
select events.* from events join users on 1
-- ----
SELECT a FROM events GROUP BY a WITH TOTALS HAVING count() > 1
-- ----
SELECT
a	FROM /* c */ events
-- note
 GROUP 
 BY  a
WITH	TOTALS /* c */ HAVING
-- note
 count() 
 >  1
-- ----
select a from events group by a with TOTALS HAVING count() > 1
-- ----
SELECT a FROM events GROUP BY ROLLUP(a, b)
-- ----
SELECT
a	FROM /* c */ events
-- note
 GROUP 
 BY  ROLLUP(a,
b)
-- ----
select a from events group by ROLLUP(a, b)
-- ----
SELECT a FROM events GROUP BY GROUPING SETS ((a), (b))
-- ----
SELECT	a /* c */ FROM
-- note
 events 
 GROUP  BY
GROUPING	SETS /* c */ ((a),
-- note
 (b))
-- ----
select a from events group by GROUPING SETS ((a), (b))
-- ----
SELECT a FROM events LIMIT 2 BY a
-- ----
SELECT 
 a  FROM
events	LIMIT /* c */ 2
-- note
 BY 
 a
-- ----
select a from events limit 2 by a
-- ----
SELECT a FROM events ORDER BY a LIMIT 10 OFFSET 5
-- ----
SELECT  a
FROM	events /* c */ ORDER
-- note
 BY 
 a  LIMIT
10	OFFSET /* c */ 5
-- ----
select a from events order by a limit 10 OFFSET 5
-- ----
SELECT a FROM events LIMIT 5, 10
-- ----
SELECT
-- note
 a 
 FROM  events
LIMIT	5, /* c */ 10
-- ----
select a from events limit 5, 10
-- ----
SELECT a FROM events FINAL
-- ----
SELECT
-- note
 a 
 FROM  events
FINAL
-- ----
select a from events final
-- ----
SELECT a FROM events AS e FINAL WHERE e.a > 0
-- ----
SELECT	a /* c */ FROM
-- note
 events 
 AS  e
FINAL	WHERE /* c */ e.a
-- note
 > 
 0
-- ----
select a from events as e final where e.a > 0
-- ----
SELECT a FROM events SAMPLE 0.1
-- ----
SELECT  a
FROM	events /* c */ SAMPLE
-- note
 0.1
-- ----
select a from events SAMPLE 0.1
-- ----
SELECT a FROM events PREWHERE a > 1 WHERE b < 2
-- ----
SELECT 
 a  FROM
events	PREWHERE /* c */ a
-- note
 > 
 1  WHERE
b	< /* c */ 2
-- ----
select a from events PREWHERE a > 1 where b < 2
-- ----
SELECT DISTINCT a FROM events
-- ----
SELECT
-- note
 DISTINCT 
 a  FROM
events
-- ----
select distinct a from events
-- ----
SELECT DISTINCT ON (a) a, b FROM events
-- ----
SELECT	DISTINCT /* c */ ON
-- note
 (a) 
 a,  b
FROM	events
-- ----
select distinct on (a) a, b from events
-- ----
SELECT TOP 5 a FROM events
-- ----
SELECT /* c */ TOP
-- note
 5 
 a  FROM
events
-- ----
select TOP 5 a from events
-- ----
SELECT a FROM events QUALIFY row_number() OVER (ORDER BY a) = 1
-- ----
SELECT	a /* c */ FROM
-- note
 events 
 QUALIFY  row_number()
OVER	(ORDER /* c */ BY
-- note
 a) 
 =  1
-- ----
select a from events QUALIFY row_number() OVER (order by a) = 1
-- ----
SELECT if(a > 1, 'x', 'y'), multiIf(a = 1, 'a', a = 2, 'b', 'c'), CASE WHEN a THEN 1 ELSE 2 END FROM events
-- ----
SELECT
if(a	> /* c */ 1,
-- note
 'x', 
 'y'),  multiIf(a
=	1, /* c */ 'a',
-- note
 a 
 =  2,
'b',	'c'), /* c */ CASE
-- note
 WHEN 
 a  THEN
1	ELSE /* c */ 2
-- note
 END 
 FROM  events
-- ----
select if(a > 1, 'x', 'y'), multiIf(a = 1, 'a', a = 2, 'b', 'c'), CASE WHEN a THEN 1 ELSE 2 END from events
-- ----
SELECT CASE a WHEN 1 THEN 'one' ELSE 'other' END FROM events
-- ----
SELECT
CASE	a /* c */ WHEN
-- note
 1 
 THEN  'one'
ELSE	'other' /* c */ END
-- note
 FROM 
 events
-- ----
select CASE a WHEN 1 THEN 'one' ELSE 'other' END from events
-- ----
SELECT a FROM events WHERE a BETWEEN 1 AND 10 AND b LIKE '%x%' AND c NOT ILIKE 'y' AND d IS NOT NULL
-- ----
SELECT  a
FROM	events /* c */ WHERE
-- note
 a 
 BETWEEN  1
AND	10 /* c */ AND
-- note
 b 
 LIKE  '%x%'
AND	c /* c */ NOT
-- note
 ILIKE 
 'y'  AND
d	IS /* c */ NOT
-- note
 NULL
-- ----
select a from events where a BETWEEN 1 AND 10 AND b LIKE '%x%' AND c not ILIKE 'y' AND d IS not NULL
-- ----
SELECT toStartOfInterval(ts, INTERVAL 1 HOUR), now() - INTERVAL 1 DAY FROM events
-- ----
SELECT 
 toStartOfInterval(ts,  INTERVAL
1	HOUR), /* c */ now()
-- note
 - 
 INTERVAL  1
DAY	FROM /* c */ events
-- ----
select toStartOfInterval(ts, INTERVAL 1 HOUR), now() - INTERVAL 1 DAY from events
-- ----
SELECT dictGet('dict_countries', 'name', toUInt64(cid)) FROM events
-- ----
SELECT
-- note
 dictGet('dict_countries', 
 'name',  toUInt64(cid))
FROM	events
-- ----
select dictGet('dict_countries', 'name', toUInt64(cid)) from events
-- ----
SELECT dictGetOrDefault('dict_countries', 'name', toUInt64(cid), 'x') FROM events
-- ----
SELECT /* c */ dictGetOrDefault('dict_countries',
-- note
 'name', 
 toUInt64(cid),  'x')
FROM	events
-- ----
select dictGetOrDefault('dict_countries', 'name', toUInt64(cid), 'x') from events
-- ----
SELECT joinGet('join_users', 'name', uid) FROM events
-- ----
SELECT /* c */ joinGet('join_users',
-- note
 'name', 
 uid)  FROM
events
-- ----
select joinGet('join_users', 'name', uid) from events
-- ----
SELECT 'FROM system.tables' FROM events
-- ----
SELECT	'FROM system.tables' /* c */ FROM
-- note
 events
-- ----
select 'FROM system.tables' from events
-- ----
SELECT `from`, "select" FROM events
-- ----
SELECT 
 `from`,  "select"
FROM	events
-- ----
select `from`, "select" from events
-- ----
SELECT a AS `b c` FROM events
-- ----
SELECT /* c */ a
-- note
 AS 
 `b c`  FROM
events
-- ----
select a as `b c` from events
-- ----
SELECT t.1, tupleElement(t, 2), m['k'], arr[1] FROM events
-- ----
SELECT	t.1, /* c */ tupleElement(t,
-- note
 2), 
 m['k'],  arr[1]
FROM	events
-- ----
select t.1, tupleElement(t, 2), m['k'], arr[1] from events
-- ----
SELECT map('a', 1), [1, 2], (1, 2)
-- ----
SELECT /* c */ map('a',
-- note
 1), 
 [1,  2],
(1,	2)
-- ----
select map('a', 1), [1, 2], (1, 2)
-- ----
SELECT $$a 'quoted' text$$, $tag$x$tag$
-- ----
SELECT /* c */ $$a 'quoted' text$$,
-- note
 $tag$x$tag$
-- ----
select $$a 'quoted' text$$, $tag$x$tag$
-- ----
SELECT 0x1F, 0b101, 1e10, 1_000_000, .5, 1.5e-3, inf, nan
-- ----
SELECT 
 0x1F,  0b101,
1e10,	1_000_000, /* c */ .5,
-- note
 1.5e-3, 
 inf,  nan
-- ----
select 0x1F, 0b101, 1e10, 1_000_000, .5, 1.5e-3, inf, nan
-- ----
SELECT a FROM events -- trailing comment
-- ----
SELECT
a	FROM /* c */ events
-- note
 -- trailing comment
-- ----
select a from events -- trailing comment
-- ----
SELECT a /* inline */ FROM /* another */ events
-- ----
SELECT 
 a  /* inline */
FROM	/* another */ /* c */ events
-- ----
select a /* inline */ from /* another */ events
-- ----
SELECT a FROM events # hash comment
-- ----
SELECT
-- note
 a 
 FROM  events
# hash comment
-- ----
select a from events # hash comment
-- ----
SELECT a FROM /* /* nested */ comment */ events
-- ----
SELECT	a /* c */ FROM
-- note
 /* /* nested */ 
 comment  */
events
-- ----
select a from /* /* nested */ comment */ events
-- ----
SELECT a FROM events;
-- ----
SELECT	a /* c */ FROM
-- note
 events;
-- ----
select a from events;
-- ----
SELECT a FROM events FORMAT JSON
-- ----
SELECT 
 a  FROM
events	FORMAT /* c */ JSON
-- ----
select a from events format JSON
-- ----
SELECT a FROM events FORMAT CSVWithNames;
-- ----
SELECT
-- note
 a 
 FROM  events
FORMAT	CSVWithNames;
-- ----
select a from events format CSVWithNames;
-- ----
SELECT a FROM events SETTINGS max_threads = 2
-- ----
SELECT /* c */ a
-- note
 FROM 
 events  SETTINGS
max_threads	= /* c */ 2
-- ----
select a from events settings max_threads = 2
-- ----
SELECT a FROM events SETTINGS max_threads = 1, join_use_nulls = 1
-- ----
SELECT
-- note
 a 
 FROM  events
SETTINGS	max_threads /* c */ =
-- note
 1, 
 join_use_nulls  =
1
-- ----
select a from events settings max_threads = 1, join_use_nulls = 1
-- ----
FROM events SELECT a
-- ----
FROM	events /* c */ SELECT
-- note
 a
-- ----
from events select a
-- ----
FROM events SELECT a WHERE uid IN users
-- ----
FROM 
 events  SELECT
a	WHERE /* c */ uid
-- note
 IN 
 users
-- ----
from events select a where uid in users
-- ----
SELECT a FROM events WHERE a IN (SELECT a FROM users UNION ALL SELECT a FROM sessions)
-- ----
SELECT  a
FROM	events /* c */ WHERE
-- note
 a 
 IN  (SELECT
a	FROM /* c */ users
-- note
 UNION 
 ALL  SELECT
a	FROM /* c */ sessions)
-- ----
select a from events where a in (select a from users union all select a from sessions)
-- ----
SELECT * FROM events WHERE uid IN (SELECT uid FROM (SELECT uid FROM sessions JOIN users ON sessions.uid = users.id))
-- ----
SELECT
-- note
 * 
 FROM  events
WHERE	uid /* c */ IN
-- note
 (SELECT 
 uid  FROM
(SELECT	uid /* c */ FROM
-- note
 sessions 
 JOIN  users
ON	sessions.uid /* c */ =
-- note
 users.id))
-- ----
select * from events where uid in (select uid from (select uid from sessions join users on sessions.uid = users.id))
-- ----
SELECT * FROM (SELECT uid, count() AS c FROM events GROUP BY uid) AS t WHERE c > (SELECT avg(c) FROM (SELECT count() AS c FROM users GROUP BY id))
-- ----
SELECT 
 *  FROM
(SELECT	uid, /* c */ count()
-- note
 AS 
 c  FROM
events	GROUP /* c */ BY
-- note
 uid) 
 AS  t
WHERE	c /* c */ >
-- note
 (SELECT 
 avg(c)  FROM
(SELECT	count() /* c */ AS
-- note
 c 
 FROM  users
GROUP	BY /* c */ id))
-- ----
select * from (select uid, count() as c from events group by uid) as t where c > (select avg(c) from (select count() as c from users group by id))
-- ----
SELECT toDate(ts) AS d, countIf(type = 'view') AS views FROM events WHERE d >= today() - 7 GROUP BY d ORDER BY d
-- ----
SELECT
-- note
 toDate(ts) 
 AS  d,
countIf(type	= /* c */ 'view')
-- note
 AS 
 views  FROM
events	WHERE /* c */ d
-- note
 >= 
 today()  -
7	GROUP /* c */ BY
-- note
 d 
 ORDER  BY
d
-- ----
select toDate(ts) as d, countIf(type = 'view') as views from events where d >= today() - 7 group by d order by d
-- ----
SELECT lower(s), upper(s), concat(a, '-', b), a || b, replaceAll(s, 'a', 'b'), splitByChar(',', s) FROM events
-- ----
SELECT	lower(s), /* c */ upper(s),
-- note
 concat(a, 
 '-',  b),
a	|| /* c */ b,
-- note
 replaceAll(s, 
 'a',  'b'),
splitByChar(',',	s) /* c */ FROM
-- note
 events
-- ----
select lower(s), upper(s), concat(a, '-', b), a || b, replaceAll(s, 'a', 'b'), splitByChar(',', s) from events
-- ----
SELECT JSONExtractString(payload, 'x'), JSONExtract(payload, 'y', 'Int64') FROM events
-- ----
SELECT 
 JSONExtractString(payload,  'x'),
JSONExtract(payload,	'y', /* c */ 'Int64')
-- note
 FROM 
 events
-- ----
select JSONExtractString(payload, 'x'), JSONExtract(payload, 'y', 'Int64') from events
-- ----
SELECT formatDateTime(ts, '%Y'), toUnixTimestamp(ts), parseDateTimeBestEffort(s) FROM events
-- ----
SELECT  formatDateTime(ts,
'%Y'),	toUnixTimestamp(ts), /* c */ parseDateTimeBestEffort(s)
-- note
 FROM 
 events
-- ----
select formatDateTime(ts, '%Y'), toUnixTimestamp(ts), parseDateTimeBestEffort(s) from events
-- ----
SELECT greatest(a, b), least(a, b), abs(a), round(b, 2), intDiv(a, 2), a % 3 FROM events
-- ----
SELECT  greatest(a,
b),	least(a, /* c */ b),
-- note
 abs(a), 
 round(b,  2),
intDiv(a,	2), /* c */ a
-- note
 % 
 3  FROM
events
-- ----
select greatest(a, b), least(a, b), abs(a), round(b, 2), intDiv(a, 2), a % 3 from events
-- ----
SELECT uniqExact(uid), uniqCombined(uid), argMax(a, ts), anyLast(a) FROM events
-- ----
SELECT	uniqExact(uid), /* c */ uniqCombined(uid),
-- note
 argMax(a, 
 ts),  anyLast(a)
FROM	events
-- ----
select uniqExact(uid), uniqCombined(uid), argMax(a, ts), anyLast(a) from events
-- ----
SELECT groupArray(a), groupUniqArray(b), arraySort(groupArray(c)) FROM events
-- ----
SELECT /* c */ groupArray(a),
-- note
 groupUniqArray(b), 
 arraySort(groupArray(c))  FROM
events
-- ----
select groupArray(a), groupUniqArray(b), arraySort(groupArray(c)) from events
-- ----
SELECT a FROM events WHERE match(s, '^x') AND has(tags, 'y') AND startsWith(s, 'z')
-- ----
SELECT	a /* c */ FROM
-- note
 events 
 WHERE  match(s,
'^x')	AND /* c */ has(tags,
-- note
 'y') 
 AND  startsWith(s,
'z')
-- ----
select a from events where match(s, '^x') AND has(tags, 'y') AND startsWith(s, 'z')
-- ----
SELECT sipHash64(a), cityHash64(b), MD5(s), hex(a) FROM events
-- ----
SELECT	sipHash64(a), /* c */ cityHash64(b),
-- note
 MD5(s), 
 hex(a)  FROM
events
-- ----
select sipHash64(a), cityHash64(b), MD5(s), hex(a) from events
-- ----
SELECT a FROM tinybird.pipe_stats_rt WHERE pipe_name IN (SELECT pipe_name FROM tinybird.datasources_ops_log)
-- ----
SELECT	a /* c */ FROM
-- note
 tinybird /* x */ .
pipe_stats_rt 
 WHERE  pipe_name
IN	(SELECT /* c */ pipe_name
-- note
 FROM 
 tinybird /* x */ .
datasources_ops_log)
-- ----
SELECT a FROM `tinybird`.`pipe_stats_rt` WHERE pipe_name IN (SELECT pipe_name FROM `tinybird`.`datasources_ops_log`)
-- ----
select a from tinybird.pipe_stats_rt where pipe_name in (select pipe_name from tinybird.datasources_ops_log)
-- ----
SELECT * FROM roost.audit_log a JOIN tinybird.pipe_stats_rt p ON a.ts = p.ts
-- ----
SELECT  *
FROM	roost /* x */ .
audit_log /* c */ a
-- note
 JOIN 
 tinybird /* x */ .
pipe_stats_rt  p
ON	a.ts /* c */ =
-- note
 p.ts
-- ----
SELECT * FROM `roost`.`audit_log` a JOIN `tinybird`.`pipe_stats_rt` p ON a.ts = p.ts
-- ----
select * from roost.audit_log a join tinybird.pipe_stats_rt p on a.ts = p.ts
-- ----
SELECT a FROM `Events2`
-- ----
SELECT 
 a  FROM
`Events2`
-- ----
select a from `Events2`
-- ----
SELECT a FROM events WHERE a IN (SELECT a FROM `Events2`)
-- ----
SELECT	a /* c */ FROM
-- note
 events 
 WHERE  a
IN	(SELECT /* c */ a
-- note
 FROM 
 `Events2`)
-- ----
select a from events where a in (select a from `Events2`)
-- ----
SELECT * FROM events AS e1 JOIN events AS e2 ON e1.id = e2.parent
-- ----
SELECT  *
FROM	events /* c */ AS
-- note
 e1 
 JOIN  events
AS	e2 /* c */ ON
-- note
 e1.id 
 =  e2.parent
-- ----
select * from events as e1 join events as e2 on e1.id = e2.parent
-- ----
SELECT * FROM events e1, events e2 WHERE e1.id = e2.parent
-- ----
SELECT
*	FROM /* c */ events
-- note
 e1, 
 events  e2
WHERE	e1.id /* c */ =
-- note
 e2.parent
-- ----
select * from events e1, events e2 where e1.id = e2.parent
-- ----
SELECT count() FROM (SELECT 1 FROM events) AS x, (SELECT 2 FROM users) AS y
-- ----
SELECT 
 count()  FROM
(SELECT	1 /* c */ FROM
-- note
 events) 
 AS  x,
(SELECT	2 /* c */ FROM
-- note
 users) 
 AS  y
-- ----
select count() from (select 1 from events) as x, (select 2 from users) as y
-- ----
SELECT a FROM events WHERE a IN (SELECT a FROM users) OR b IN (SELECT b FROM sessions)
-- ----
SELECT
a	FROM /* c */ events
-- note
 WHERE 
 a  IN
(SELECT	a /* c */ FROM
-- note
 users) 
 OR  b
IN	(SELECT /* c */ b
-- note
 FROM 
 sessions)
-- ----
select a from events where a in (select a from users) OR b in (select b from sessions)
-- ----
SELECT arrayJoin([1, 2, 3]) AS x FROM events
-- ----
SELECT  arrayJoin([1,
2,	3]) /* c */ AS
-- note
 x 
 FROM  events
-- ----
select arrayJoin([1, 2, 3]) as x from events
-- ----
SELECT a FROM events ORDER BY a ASC NULLS FIRST, b DESC NULLS LAST
-- ----
SELECT
a	FROM /* c */ events
-- note
 ORDER 
 BY  a
ASC	NULLS /* c */ FIRST,
-- note
 b 
 DESC  NULLS
LAST
-- ----
select a from events order by a ASC NULLS FIRST, b DESC NULLS LAST
-- ----
SELECT a FROM events ORDER BY a WITH FILL
-- ----
SELECT	a /* c */ FROM
-- note
 events 
 ORDER  BY
a	WITH /* c */ FILL
-- ----
select a from events order by a with FILL
-- ----
SELECT a FROM events ORDER BY a LIMIT 10 WITH TIES
-- ----
SELECT
-- note
 a 
 FROM  events
ORDER	BY /* c */ a
-- note
 LIMIT 
 10  WITH
TIES
-- ----
select a from events order by a limit 10 with TIES
-- ----
SELECT throwIf(a > 100), version(), timezone() FROM events
-- ----
SELECT	throwIf(a /* c */ >
-- note
 100), 
 version(),  timezone()
FROM	events
-- ----
select throwIf(a > 100), version(), timezone() from events
-- ----
SELECT toDecimal64(a, 2), toFixedString(s, 3), reinterpretAsString(a) FROM events
-- ----
SELECT /* c */ toDecimal64(a,
-- note
 2), 
 toFixedString(s,  3),
reinterpretAsString(a)	FROM /* c */ events
-- ----
select toDecimal64(a, 2), toFixedString(s, 3), reinterpretAsString(a) from events
-- ----
SELECT * FROM events WHERE (a, b) IN (SELECT a, b FROM users)
-- ----
SELECT
-- note
 * 
 FROM  events
WHERE	(a, /* c */ b)
-- note
 IN 
 (SELECT  a,
b	FROM /* c */ users)
-- ----
select * from events where (a, b) in (select a, b from users)
-- ----
SELECT a FROM (SELECT a FROM events ORDER BY a LIMIT 10) ORDER BY a DESC
-- ----
SELECT
-- note
 a 
 FROM  (SELECT
a	FROM /* c */ events
-- note
 ORDER 
 BY  a
LIMIT	10) /* c */ ORDER
-- note
 BY 
 a  DESC
-- ----
select a from (select a from events order by a limit 10) order by a DESC
-- ----
SELECT a FROM events WHERE a > ALL (SELECT a FROM users)
-- ----
SELECT
a	FROM /* c */ events
-- note
 WHERE 
 a  >
ALL	(SELECT /* c */ a
-- note
 FROM 
 users)
-- ----
select a from events where a > all (select a from users)
-- ----
SELECT a FROM events WHERE a = ANY (SELECT a FROM users)
-- ----
SELECT  a
FROM	events /* c */ WHERE
-- note
 a 
 =  ANY
(SELECT	a /* c */ FROM
-- note
 users)
-- ----
select a from events where a = any (select a from users)
-- ----
SELECT count() FROM events WHERE ts > now() - toIntervalDay(1) SETTINGS max_threads = 4
-- ----
SELECT 
 count()  FROM
events	WHERE /* c */ ts
-- note
 > 
 now()  -
toIntervalDay(1)	SETTINGS /* c */ max_threads
-- note
 = 
 4
-- ----
select count() from events where ts > now() - toIntervalDay(1) settings max_threads = 4
-- ----
SELECT a FROM events WHERE not(a) AND and(b, c) OR or(d, e)
-- ----
SELECT  a
FROM	events /* c */ WHERE
-- note
 not(a) 
 AND  and(b,
c)	OR /* c */ or(d,
-- note
 e)
-- ----
select a from events where NOT(a) AND and(b, c) OR or(d, e)
-- ----
SELECT * FROM events JOIN users ON events.uid = users.id AND users.active = 1 WHERE events.a > 0
-- ----
SELECT 
 *  FROM
events	JOIN /* c */ users
-- note
 ON 
 events.uid  =
users.id	AND /* c */ users.active
-- note
 = 
 1  WHERE
events.a	> /* c */ 0
-- ----
select * from events join users on events.uid = users.id AND users.active = 1 where events.a > 0
-- ----
SELECT * FROM events AS e LEFT JOIN (SELECT id, name FROM users) AS u ON e.uid = u.id LEFT JOIN (SELECT * FROM sessions) s USING (uid)
-- ----
SELECT
-- note
 * 
 FROM  events
AS	e /* c */ LEFT
-- note
 JOIN 
 (SELECT  id,
name	FROM /* c */ users)
-- note
 AS 
 u  ON
e.uid	= /* c */ u.id
-- note
 LEFT 
 JOIN  (SELECT
*	FROM /* c */ sessions)
-- note
 s 
 USING  (uid)
-- ----
select * from events as e left join (select id, name from users) as u on e.uid = u.id left join (select * from sessions) s using (uid)
