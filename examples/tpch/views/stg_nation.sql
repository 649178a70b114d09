-- Staging view over the nation source.
select
    n_nationkey,
    n_name,
    n_regionkey,
    n_comment
from
    nation
