{#- The day margin VAT entries are posted up to: var('accounting_as_of') (tests pin it), else the
    accountant's today (macro accounting_today; the database's current date is UTC's, a day
    behind Paris between 23:00 and midnight UTC). -#}
{% macro margin_vat_as_of() -%}
    {%- if var('accounting_as_of') -%}
        cast('{{ var("accounting_as_of") }}' as date)
    {%- else -%}
        {{ accounting_today() }}
    {%- endif -%}
{%- endmacro %}
