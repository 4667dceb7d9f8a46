{#- In accounting_entries' incremental run: the record `source_id` (an SQL expression) of
    `source_type` has no line in the journal yet. -#}
{% macro entries_unposted(source_type, source_id) -%}
    not exists (select 1 from {{ this }} as t where t.source_type = '{{ source_type }}' and t.source_id = {{ source_id }})
{%- endmacro %}
