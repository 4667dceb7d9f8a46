{#- The ids of the records of `source_type` (payment, client_invoice, write_off) that have no line
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
