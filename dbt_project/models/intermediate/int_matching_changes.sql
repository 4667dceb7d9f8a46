{#- The dossiers whose matching inputs changed since the last build, as this build reads them: a
    snapshot of app.matching_changes taken before the per-dossier tables are built, so they all
    apply the same changes. int_matching_changes_applied deletes these rows from the log once they
    are applied; a change committed after the snapshot stays there for the next build. -#}
{{ config(schema='intermediate', materialized='table') }}

select seq, dossier_number, everything
from {{ source('app', 'matching_changes') }}
