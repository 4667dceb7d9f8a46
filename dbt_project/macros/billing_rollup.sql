{#- The dossier-level supplier status of outputs.md, rolled up from per-supplier rows: one
    definition for marts.dossier_billing_status (from the live view) and int_search__dossier_status
    (from the copy the accountants' search reads). `billing_rollup_counts(relation)` is the
    per-dossier aggregate of `relation`'s `status`; `billing_rollup_status(alias)` the status of a
    dossier whose counts are `alias`'s (null counts: no supplier row). -#}
{% macro billing_rollup_counts(relation) -%}
    select
        dossier_number,
        count(*) as supplier_rows,
        count(*) filter (where status = 'over_invoiced') as over_rows,
        count(*) filter (where status = 'invoiced') as invoiced_rows,
        count(*) filter (where status = 'not_invoiced') as not_invoiced_rows
    from {{ relation }}
    group by dossier_number
{%- endmacro %}

{% macro billing_rollup_status(alias) -%}
    -- outputs.md roll-up, in its order. A dossier with no supplier row (a quote, or nothing
    -- bought) has nothing outstanding: every one of its (zero) suppliers is invoiced.
    (case
        when {{ alias }}.over_rows > 0 then 'over_invoiced'
        when coalesce({{ alias }}.invoiced_rows = {{ alias }}.supplier_rows, true) then 'invoiced'
        when {{ alias }}.not_invoiced_rows = {{ alias }}.supplier_rows then 'not_invoiced'
        else 'partially_invoiced'
    end)::text
{%- endmacro %}
