{#- The status of each (dossier, supplier) of marts.supplier_billing_status as of this build, for
    the accountants' document searches (backoffice/queries/accounting_search.py): a page of
    supplier invoices names tens of thousands of dossiers, and the live view computed for all of
    them took 8 s at 100,000 dossiers (~80 s at 1,000,000). The search reads this copy, and the
    live view for the dossiers changed since (app.mart_changes, int_search__pending_dossiers), so
    what it shows is as current as the view. Incremental by dossier (macros/billing_changes.sql):
    a build reads the view for the dossiers whose figures may have changed since the last one,
    each by its index, and keeps the other rows. -#}
-- depends_on: {{ ref('int_mart_changes') }}
-- depends_on: {{ ref('int_mart_changes_fingerprint') }}
-- depends_on: {{ ref('int_matching_candidates') }}
{% set dossiers = billing_changed_dossiers() if is_incremental() else none %}
{{ config(
    schema='intermediate',
    materialized='incremental',
    incremental_strategy='replace_billing_dossiers',
    on_schema_change='fail',
    indexes=[{'columns': ['dossier_number', 'supplier_code'], 'unique': true}],
    post_hook="analyze {{ this }}"
) }}

{{ rows_of_dossiers(ref('supplier_billing_status'), ['dossier_number', 'supplier_code', 'status'], 'dossier_number', dossiers) }}
