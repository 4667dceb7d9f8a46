{#- The ids of the records of `source_type` (payment, client_invoice, write_off; for a
    supplier_invoice, its supplier code and number) that have no line
    in the journal `journal` yet: those accounting_entries' incremental run posts. Used by the
    model (journal: {{ this }}) and by the checks of the views it reads those records from
    (rows_hold's scope_entries), which look at what this build posts, not at every record ever
    posted: a posted entry is never written again. -#}
{% macro entries_to_post(source_type, journal) -%}
    {%- if source_type == 'payment' -%}
        select p.payment_id from {{ ref('stg_app__payments') }} as p
        where p.moves_money and {{ entries_unposted('payment', 'p.payment_id', journal) }}
    {%- elif source_type == 'client_invoice' -%}
        select i.invoice_number from {{ ref('stg_app__client_invoices') }} as i
        where {{ entries_unposted('client_invoice', 'i.invoice_number', journal) }}
    {%- elif source_type == 'supplier_invoice' -%}
        {#- pairs, not ids: the rows the view is computed for (entries_supplier_invoices) -#}
        select i.supplier_code, i.invoice_number from {{ ref('stg_app__supplier_invoices') }} as i
        where {{ entries_unposted('supplier_invoice', dbt.concat(["i.supplier_code", "'/'", "i.invoice_number"]), journal) }}
    {%- elif source_type == 'write_off' -%}
        select cast(w.write_off_id as text) from {{ ref('stg_app__write_offs') }} as w
        where {{ entries_unposted('write_off', 'cast(w.write_off_id as text)', journal) }}
    {%- else -%}
        {{ exceptions.raise_compiler_error("entries_to_post: no source type " ~ source_type) }}
    {%- endif -%}
{%- endmacro %}

{#- The record `source_id` (an SQL expression) of `source_type` has no line in `journal` yet. -#}
{% macro entries_unposted(source_type, source_id, journal) -%}
    not exists (select 1 from {{ journal }} as t where t.source_type = '{{ source_type }}' and t.source_id = {{ source_id }})
{%- endmacro %}

{#- The journal as a relation, without a ref: a check of the views accounting_entries reads runs
    before the model, and must see the journal as this build found it. None when it does not
    exist yet (the first build posts everything). -#}
{% macro entries_journal() -%}
    {{- return(adapter.get_relation(database=target.database, schema='marts', identifier='accounting_entries')) -}}
{%- endmacro %}

{#- The dossiers whose margin VAT the incremental run of accounting_entries reads (docs/dbt.md,
    "Accounting entries: the new records only"), as a query, or none for the whole view. A dossier
    is posted once, when confirmed, departed (by margin_vat_as_of) and its margin VAT positive; one
    not posted yet can become due only by a change of its figures (a dossier this build recomputes:
    billing_changed_dossiers) or by its departure day being reached since the last build that
    applied its changes (int_mart_changes_applied keeps the day it started from). None when every
    dossier is recomputed or that day is not known. -#}
{% macro entries_margin_vat_dossiers(journal) -%}
    {%- set changed = billing_changed_dossiers() -%}
    {%- if changed is none -%}
        {{- return(none) -}}
    {%- endif -%}
    {%- set since = run_query(
        "select margin_vat_as_of from "
        ~ api.Relation.create(database=target.database, schema='intermediate', identifier='int_mart_changes_applied')
    ).columns[0].values() -%}
    {%- if since | length != 1 or since[0] is none -%}
        {{- return(none) -}}
    {%- endif -%}
    {{- return(
        "select d.dossier_number from " ~ ref('int_client__accounts') ~ " as d"
        ~ " where d.status = 'confirmed' and d.departure_date <= " ~ margin_vat_as_of()
        ~ " and (" ~ matching_among('d.dossier_number', changed)
        ~ " or d.departure_date > cast('" ~ since[0] ~ "' as date))"
        ~ " and " ~ entries_unposted('margin_vat', 'd.dossier_number', journal)
    ) -}}
{%- endmacro %}
