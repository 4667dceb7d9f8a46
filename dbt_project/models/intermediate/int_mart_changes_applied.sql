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
-- depends_on: {{ ref('int_margin__actual_costs') }}
-- depends_on: {{ ref('accounting_entries') }}
{#- The rows this build's matching logged (the dossiers its lines moved away from or to,
    macros/matching_candidates_incremental.sql) go too: the copies above recomputed them. The
    fingerprint of what no log follows is kept for the next build's copies to compare with
    (macros/billing_changes.sql), and the day the margin VAT was posted up to for the next
    journal (macro entries_margin_vat_dossiers): so the journal is built before the log is
    emptied. -#}
{{ config(
    schema='intermediate',
    materialized='table',
    post_hook="delete from {{ source('app', 'mart_changes') }} as l
               where l.seq in (select c.seq from {{ ref('int_mart_changes') }} as c)
                   or l.logged_by = '{{ invocation_id }}'"
) }}

select
    count(*)::bigint as changes,
    count(distinct dossier_number)::bigint as dossiers,
    count(*) filter (where invoice_number is not null)::bigint as invoice_lines,
    coalesce(bool_or(everything), false) as everything,
    (
        select count(*) from {{ source('app', 'mart_changes') }}
        where logged_by = '{{ invocation_id }}' and dossier_number is not null
    )::bigint as moved_dossiers,
    (select f.fingerprint from {{ ref('int_mart_changes_fingerprint') }} as f) as fingerprint,
    (select f.margin_vat_as_of from {{ ref('int_mart_changes_fingerprint') }} as f) as margin_vat_as_of,
    now() as applied_at
from {{ ref('int_mart_changes') }}
