{#- The status of each (dossier, supplier) of marts.supplier_billing_status as of this build, for
    the accountants' document searches (backoffice/queries/accounting_search.py): a page of
    supplier invoices names tens of thousands of dossiers, and the live view computed for all of
    them took 8 s at 100,000 dossiers (~80 s at 1,000,000). The search reads this copy, and the
    live view for the dossiers changed since (app.mart_changes, int_search__pending_dossiers), so
    what it shows is as current as the view. Rebuilt whole by each build: what a line is matched
    to moves with every new invoice, also for dossiers no change names. -#}
{{ config(
    schema='intermediate',
    materialized='table',
    indexes=[{'columns': ['dossier_number', 'supplier_code'], 'unique': true}],
    post_hook="analyze {{ this }}"
) }}

select dossier_number, supplier_code, status
from {{ ref('supplier_billing_status') }}
