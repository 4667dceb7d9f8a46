{#- What the build checked of the change log (one row), and, after it, the log emptied of those
    changes: this model runs once the per-dossier views it depends on are built and their checks
    passed (a failure skips it, and the next build checks the same dossiers again). Rows are
    deleted by seq: one committed during the build stays, whatever its number.

    Build it with the views it depends on (a whole build, or `+int_mart_changes_applied`):
    selected alone it would empty the log without checking it. The accountants' searches read
    the int_search__ copies of the build and the live views for the dossiers still in the log:
    the log is emptied once the copies are built, never before. -#}
-- depends_on: {{ ref('dossier_billing_status') }}
-- depends_on: {{ ref('supplier_billing_status') }}
-- depends_on: {{ ref('dossier_margin') }}
-- depends_on: {{ ref('int_margin__by_dossier') }}
-- depends_on: {{ ref('int_client__balances') }}
-- depends_on: {{ ref('int_entries__margin_vat') }}
-- depends_on: {{ ref('int_margin__estimated_costs') }}
-- depends_on: {{ ref('int_expected__by_dossier_supplier') }}
-- depends_on: {{ ref('dossier_price_lines') }}
-- depends_on: {{ ref('int_search__supplier_status') }}
-- depends_on: {{ ref('int_search__dossier_status') }}
-- depends_on: {{ ref('int_search__invoice_dossiers') }}
-- depends_on: {{ ref('int_search__invoice_summary') }}
{{ config(
    schema='intermediate',
    materialized='table',
    post_hook="delete from {{ source('app', 'mart_changes') }} as l
               using {{ ref('int_mart_changes') }} as c where l.seq = c.seq"
) }}

select
    count(*)::bigint as changes,
    count(distinct dossier_number)::bigint as dossiers,
    count(*) filter (where invoice_number is not null)::bigint as invoice_lines,
    coalesce(bool_or(everything), false) as everything,
    now() as applied_at
from {{ ref('int_mart_changes') }}
