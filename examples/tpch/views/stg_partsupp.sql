-- Staging view over the partsupp source.
select
    ps_partkey,
    ps_suppkey,
    ps_availqty,
    ps_supplycost,
    ps_comment
from
    partsupp
