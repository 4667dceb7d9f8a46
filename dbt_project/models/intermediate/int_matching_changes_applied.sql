{#- What the build's per-dossier tables applied of the change log (one row), and, after it, the
    log emptied of those changes: this model runs once int_matching_dossier_keys,
    int_matching_traveller_names, int_matching_dossier_amounts and int_matching_candidates (which
    reads the log to know which lines to recompute) are built and tested (a failure skips it, and
    the same changes are applied again next time). Rows are deleted by seq, not up
    to a seq: one committed during the build stays, whatever its number.

    Build it with the tables it depends on (a whole build, or `+int_matching_changes_applied`):
    selected alone it would empty the log without applying it. -#}
-- depends_on: {{ ref('int_matching_dossier_keys') }}
-- depends_on: {{ ref('int_matching_traveller_names') }}
-- depends_on: {{ ref('int_matching_dossier_amounts') }}
-- depends_on: {{ ref('int_matching_candidates') }}
{{ config(
    schema='intermediate',
    materialized='table',
    post_hook="delete from {{ source('app', 'matching_changes') }} as l
               using {{ ref('int_matching_changes') }} as c where l.seq = c.seq"
) }}

select
    count(*)::bigint as changes,
    count(distinct dossier_number)::bigint as dossiers,
    coalesce(bool_or(everything), false) as everything,
    now() as applied_at
from {{ ref('int_matching_changes') }}
