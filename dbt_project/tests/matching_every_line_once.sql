-- Every supplier invoice line is in the matches: once, or split by hand into parts that add up to
-- the line; confidence stays in 0..1. Returns the lines that break it. A daily build checks the
-- lines that may differ since the last one (int_mart_changed_lines, macro changed_lines), each
-- read by its key; a full or weekly build, every line.
-- depends_on: {{ ref('int_mart_changed_lines') }}
{%- set lines = changed_lines(ref('int_mart_changed_lines')) %}
with matches as (
    {{ rows_of_lines(
        ref('supplier_invoice_line_matches'),
        ['supplier_code', 'invoice_number', 'line_number', 'match_method', 'amount_incl_tax', 'confidence'],
        lines) }}
),

parts as (
    select
        supplier_code, invoice_number, line_number,
        count(*) as rows_for_line,
        count(*) filter (where match_method = 'manual') as manual_rows,
        sum(amount_incl_tax) as parts_amount,
        bool_or(confidence < 0 or confidence > 1) as bad_confidence
    from matches
    group by supplier_code, invoice_number, line_number
)

select l.supplier_code, l.invoice_number, l.line_number, p.rows_for_line, p.parts_amount, l.amount_incl_tax
from {{ ref('stg_app__supplier_invoice_lines') }} as l
left join parts as p using (supplier_code, invoice_number, line_number)
where (p.rows_for_line is null
    or (p.rows_for_line > 1 and p.manual_rows < p.rows_for_line)
    or p.parts_amount <> l.amount_incl_tax
    or p.bad_confidence)
{%- if lines is not none %}
    and (l.supplier_code, l.invoice_number, l.line_number) in (
        select supplier_code, invoice_number, line_number from {{ lines }}
    )
{%- endif %}
