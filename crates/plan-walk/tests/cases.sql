-- The lineage suite: one query per case, each with a snapshot golden/lineage__<case>.snap.
-- Tables (see tests/lineage.rs): customer, orders, lineitem, nation, region, employees,
-- docs (with a list and a struct column), stg_orders (a pipeline view, read by name), and
-- the DataFusion view v_customer_nation. `mask` is a UDF.

-- case: select_column
SELECT c_name FROM customer;

-- case: alias_column
SELECT c_name AS name, c_custkey AS id FROM customer;

-- case: select_star
SELECT * FROM nation;

-- case: qualified_star
SELECT n.*, r.r_name FROM nation n JOIN region r ON n.n_regionkey = r.r_regionkey;

-- case: arithmetic
SELECT l_extendedprice * (1 - l_discount) AS revenue FROM lineitem;

-- case: cast
SELECT CAST(c_acctbal AS DOUBLE) AS balance, c_custkey::VARCHAR AS key_text FROM customer;

-- case: case_when
SELECT CASE WHEN c_acctbal > 0 THEN c_name ELSE 'none' END AS label FROM customer;

-- case: literal_only
SELECT 1 AS one, 'x' AS letter;

-- case: scalar_functions
SELECT upper(c_name) AS upper_name, round(c_acctbal, 1) AS rounded, coalesce(c_name, 'n/a') AS safe_name FROM customer;

-- case: udf
SELECT mask(c_name) AS masked, c_custkey FROM customer;

-- case: filter_simple
SELECT o_orderkey FROM orders WHERE o_orderdate >= DATE '1995-01-01' AND o_orderstatus = 'F';

-- case: filter_or
SELECT o_orderkey FROM orders WHERE o_totalprice > 100 OR o_orderstatus = 'O';

-- case: filter_like_in_list
SELECT c_custkey FROM customer WHERE c_name LIKE 'A%' AND c_nationkey IN (1, 2, 3);

-- case: filter_between
SELECT l_orderkey FROM lineitem WHERE l_quantity BETWEEN 1 AND 10;

-- case: order_by
SELECT c_name FROM customer ORDER BY c_acctbal DESC, c_custkey;

-- case: limit_offset
SELECT c_name FROM customer ORDER BY c_custkey LIMIT 5 OFFSET 2;

-- case: distinct
SELECT DISTINCT c_nationkey FROM customer;

-- case: distinct_on
SELECT DISTINCT ON (c_nationkey) c_nationkey, c_name FROM customer ORDER BY c_nationkey, c_acctbal DESC;

-- case: group_by
SELECT c_nationkey, count(*) AS customers, sum(c_acctbal) AS total FROM customer GROUP BY c_nationkey;

-- case: group_by_expression
SELECT date_part('year', o_orderdate) AS year, avg(o_totalprice) AS avg_price FROM orders GROUP BY date_part('year', o_orderdate);

-- case: having
SELECT o_custkey, count(*) AS n FROM orders GROUP BY o_custkey HAVING sum(o_totalprice) > 1000;

-- case: aggregate_filter_clause
SELECT count(*) FILTER (WHERE o_orderstatus = 'F') AS finished FROM orders;

-- case: aggregate_distinct
SELECT count(DISTINCT o_custkey) AS buyers FROM orders;

-- case: aggregate_without_group
SELECT max(o_totalprice) AS top, min(o_orderdate) AS first FROM orders;

-- case: grouping_sets
SELECT c_nationkey, c_mktsegment, sum(c_acctbal) AS total FROM customer GROUP BY GROUPING SETS ((c_nationkey), (c_mktsegment), ());

-- case: rollup
SELECT n_regionkey, n_nationkey, count(*) AS n FROM nation GROUP BY ROLLUP (n_regionkey, n_nationkey);

-- case: cube
SELECT o_orderstatus, o_custkey, sum(o_totalprice) AS total FROM orders GROUP BY CUBE (o_orderstatus, o_custkey);

-- case: inner_join_on
SELECT c.c_name, o.o_totalprice FROM customer c JOIN orders o ON c.c_custkey = o.o_custkey;

-- case: comma_join_where
SELECT c_name, o_totalprice FROM customer, orders WHERE c_custkey = o_custkey AND o_totalprice > 10;

-- case: left_join
SELECT c.c_name, o.o_orderkey FROM customer c LEFT JOIN orders o ON c.c_custkey = o.o_custkey;

-- case: right_join
SELECT c.c_name, o.o_orderkey FROM customer c RIGHT JOIN orders o ON c.c_custkey = o.o_custkey;

-- case: full_join
SELECT c.c_custkey, o.o_custkey FROM customer c FULL OUTER JOIN orders o ON c.c_custkey = o.o_custkey;

-- case: cross_join
SELECT n_name, r_name FROM nation CROSS JOIN region;

-- case: join_using
SELECT n_regionkey, n_name, r_name FROM nation JOIN (SELECT r_regionkey AS n_regionkey, r_name FROM region) r USING (n_regionkey);

-- case: natural_join
SELECT * FROM nation NATURAL JOIN (SELECT r_regionkey AS n_regionkey, r_name FROM region) r;

-- case: join_non_equi
SELECT o.o_orderkey, l.l_quantity FROM orders o JOIN lineitem l ON o.o_orderkey = l.l_orderkey AND l.l_shipdate > o.o_orderdate;

-- case: join_on_with_filter
SELECT c.c_name, o.o_orderkey FROM customer c LEFT JOIN orders o ON c.c_custkey = o.o_custkey AND o.o_orderstatus = 'F';

-- case: self_join
SELECT e.name AS employee, m.name AS manager FROM employees e JOIN employees m ON e.manager_id = m.id;

-- case: left_semi_join
SELECT c_name FROM customer LEFT SEMI JOIN orders ON c_custkey = o_custkey;

-- case: left_anti_join
SELECT c_name FROM customer LEFT ANTI JOIN orders ON c_custkey = o_custkey;

-- case: three_way_join
SELECT n.n_name, sum(o.o_totalprice) AS total FROM customer c JOIN orders o ON c.c_custkey = o.o_custkey JOIN nation n ON c.c_nationkey = n.n_nationkey GROUP BY n.n_name;

-- case: union_all
SELECT c_name AS name FROM customer UNION ALL SELECT n_name FROM nation;

-- case: union_distinct
SELECT c_nationkey AS key FROM customer UNION SELECT n_nationkey FROM nation;

-- case: union_mixed_kinds
SELECT c_name AS name FROM customer UNION ALL SELECT upper(n_name) FROM nation;

-- case: intersect
SELECT c_nationkey FROM customer INTERSECT SELECT n_nationkey FROM nation;

-- case: except
SELECT c_nationkey FROM customer EXCEPT SELECT n_nationkey FROM nation;

-- case: derived_table
SELECT t.total * 2 AS doubled FROM (SELECT sum(o_totalprice) AS total FROM orders) t;

-- case: cte
WITH big AS (SELECT o_custkey, o_totalprice FROM orders WHERE o_totalprice > 100) SELECT o_custkey, o_totalprice FROM big;

-- case: nested_ctes
WITH a AS (SELECT c_custkey, c_nationkey FROM customer), b AS (SELECT a.c_custkey, n.n_name FROM a JOIN nation n ON a.c_nationkey = n.n_nationkey), c AS (SELECT n_name, count(*) AS n FROM b GROUP BY n_name) SELECT * FROM c;

-- case: cte_used_twice
WITH t AS (SELECT n_nationkey, n_name FROM nation) SELECT x.n_name, y.n_name AS other FROM t x JOIN t y ON x.n_nationkey = y.n_nationkey + 1;

-- case: recursive_cte
WITH RECURSIVE chain AS (SELECT id, manager_id, 1 AS depth FROM employees WHERE manager_id IS NULL UNION ALL SELECT e.id, e.manager_id, chain.depth + 1 FROM employees e JOIN chain ON e.manager_id = chain.id) SELECT id, depth FROM chain;

-- case: recursive_cte_counter
WITH RECURSIVE nums AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM nums WHERE n < 10) SELECT n FROM nums;

-- case: scalar_subquery_select
SELECT c_name, (SELECT max(o_totalprice) FROM orders) AS top FROM customer;

-- case: correlated_scalar_subquery_select
SELECT c_name, (SELECT sum(o.o_totalprice) FROM orders o WHERE o.o_custkey = c.c_custkey) AS spent FROM customer c;

-- case: scalar_subquery_where
SELECT o_orderkey FROM orders WHERE o_totalprice > (SELECT avg(o_totalprice) FROM orders);

-- case: correlated_scalar_subquery_where
SELECT l_orderkey FROM lineitem l WHERE l_quantity < (SELECT 0.2 * avg(l2.l_quantity) FROM lineitem l2 WHERE l2.l_partkey = l.l_partkey);

-- case: exists
SELECT c_name FROM customer c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.o_custkey = c.c_custkey);

-- case: not_exists
SELECT c_name FROM customer c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.o_custkey = c.c_custkey AND o.o_orderstatus = 'O');

-- case: in_subquery
SELECT c_name FROM customer WHERE c_nationkey IN (SELECT n_nationkey FROM nation WHERE n_name = 'FRANCE');

-- case: not_in_subquery
SELECT c_name FROM customer WHERE c_custkey NOT IN (SELECT o_custkey FROM orders);

-- case: correlated_in_subquery
SELECT o_orderkey FROM orders o WHERE o_custkey IN (SELECT c_custkey FROM customer c WHERE c.c_nationkey = o.o_orderkey);

-- case: having_subquery
SELECT o_custkey FROM orders GROUP BY o_custkey HAVING sum(o_totalprice) > (SELECT avg(o_totalprice) FROM orders);

-- case: subquery_in_join_input
SELECT c.c_name, t.n FROM customer c JOIN (SELECT o_custkey, count(*) AS n FROM orders GROUP BY o_custkey) t ON c.c_custkey = t.o_custkey;

-- case: window_partition_order
SELECT o_orderkey, row_number() OVER (PARTITION BY o_custkey ORDER BY o_orderdate) AS rn FROM orders;

-- case: window_aggregate
SELECT o_orderkey, sum(o_totalprice) OVER (PARTITION BY o_custkey) AS customer_total FROM orders;

-- case: window_lag_frame
SELECT o_orderkey, lag(o_totalprice, 1) OVER (ORDER BY o_orderdate) AS previous, avg(o_totalprice) OVER (ORDER BY o_orderdate ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS moving FROM orders;

-- case: window_then_filter
SELECT o_orderkey FROM (SELECT o_orderkey, rank() OVER (PARTITION BY o_custkey ORDER BY o_totalprice DESC) AS r FROM orders) t WHERE r = 1;

-- case: unnest_array
SELECT id, unnest(tags) AS tag FROM docs;

-- case: unnest_struct
SELECT id, unnest(address) FROM docs;

-- case: unnest_in_from
SELECT tag FROM unnest(make_array(1, 2, 3)) AS t(tag);

-- case: struct_field
SELECT id, address['city'] AS city FROM docs;

-- case: array_function
SELECT id, array_length(tags) AS n_tags FROM docs WHERE array_has(tags, 'x');

-- case: values
SELECT column1 AS a, column2 AS b FROM (VALUES (1, 'one'), (2, 'two'));

-- case: pipeline_view
SELECT o_orderkey, o_totalprice FROM stg_orders WHERE o_totalprice > 5;

-- case: datafusion_view_star
SELECT * FROM v_customer_nation;

-- case: datafusion_view_columns
SELECT n_name, count(*) AS customers FROM v_customer_nation GROUP BY n_name;

-- case: information_schema
SELECT table_name, column_name FROM information_schema.columns WHERE table_name = 'customer';

-- case: in_subquery_select
SELECT c_name, c_nationkey IN (SELECT n_nationkey FROM nation WHERE n_regionkey = 1) AS in_region FROM customer;

-- case: exists_select
SELECT c_name, EXISTS (SELECT 1 FROM orders o WHERE o.o_custkey = c.c_custkey) AS has_orders FROM customer c;

-- case: correlated_subquery_having
SELECT o_custkey, sum(o_totalprice) AS total FROM orders o GROUP BY o_custkey HAVING sum(o_totalprice) > (SELECT avg(c_acctbal) FROM customer c WHERE c.c_custkey = o.o_custkey);

-- case: in_subquery_having
SELECT o_custkey FROM orders GROUP BY o_custkey HAVING o_custkey IN (SELECT c_custkey FROM customer WHERE c_acctbal > 0);

-- case: any_subquery
SELECT o_orderkey FROM orders WHERE o_totalprice > ANY (SELECT c_acctbal FROM customer);

-- case: all_subquery
SELECT o_orderkey FROM orders WHERE o_totalprice >= ALL (SELECT c_acctbal FROM customer);

-- case: cte_inside_cte
WITH outer_cte AS (WITH inner_cte AS (SELECT n_nationkey, n_name FROM nation) SELECT n_name FROM inner_cte WHERE n_nationkey > 3) SELECT upper(n_name) AS name FROM outer_cte;

-- case: cte_inside_subquery
SELECT t.n_name FROM (WITH r AS (SELECT r_regionkey FROM region WHERE r_name = 'ASIA') SELECT n.n_name FROM nation n JOIN r ON n.n_regionkey = r.r_regionkey) t;

-- case: intersect_all
SELECT c_nationkey FROM customer INTERSECT ALL SELECT n_nationkey FROM nation;

-- case: except_all
SELECT c_nationkey FROM customer EXCEPT ALL SELECT n_nationkey FROM nation;

-- case: right_semi_join
SELECT o_orderkey FROM customer RIGHT SEMI JOIN orders ON c_custkey = o_custkey;

-- case: right_anti_join
SELECT o_orderkey FROM customer RIGHT ANTI JOIN orders ON c_custkey = o_custkey;

-- case: aggregate_order_by
SELECT o_custkey, array_agg(o_orderkey ORDER BY o_orderdate) AS history FROM orders GROUP BY o_custkey;

-- case: first_value_aggregate
SELECT o_custkey, first_value(o_totalprice ORDER BY o_orderdate DESC) AS latest FROM orders GROUP BY o_custkey;

-- case: window_args_partition_order
SELECT o_orderkey, sum(o_totalprice) OVER (PARTITION BY o_custkey ORDER BY o_orderdate) AS running, first_value(o_orderkey) OVER (PARTITION BY o_custkey ORDER BY o_orderdate) AS first_order FROM orders;

-- case: pipeline_view_star
SELECT * FROM stg_orders;

-- case: try_cast
SELECT TRY_CAST(c_name AS BIGINT) AS maybe_number FROM customer;

-- case: udf_in_filter_and_group
SELECT mask(c_name) AS masked, count(*) AS n FROM customer WHERE mask(c_mktsegment) = 'x' GROUP BY mask(c_name);
