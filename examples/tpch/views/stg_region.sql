-- Staging view over the region source.
select
    r_regionkey,
    r_name,
    r_comment
from
    region
