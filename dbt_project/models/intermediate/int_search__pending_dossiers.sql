{#- The dossiers whose billing figures may have changed since the last build, live: those
    app.mart_changes names, and for a logged supplier invoice line (a decision, a line registered
    in the app) the dossier the matching gives it and those its decisions name, as
    macros/mart_changes.sql reads the build's snapshot of the same log. The accountants' searches
    read these dossiers' statuses from the live views and the others' from the int_search__
    copies. A view: read at query time, never built into a table. An `everything` row in the log
    (a TRUNCATE, a bulk load) makes the searches read the views for every dossier instead. -#}
{{ config(schema='intermediate', materialized='view') }}

select m.dossier_number
from {{ source('app', 'mart_changes') }} as m
where m.dossier_number is not null
union
select c.dossier_number
from {{ source('app', 'mart_changes') }} as m
inner join {{ ref('int_matching_candidates') }} as c using (supplier_code, invoice_number, line_number)
where c.candidate_rank = 1
union
select d.dossier_number
from {{ source('app', 'mart_changes') }} as m
inner join {{ source('app', 'reconciliation_decisions') }} as d using (supplier_code, invoice_number, line_number)
where d.dossier_number is not null
