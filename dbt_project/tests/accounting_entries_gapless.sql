-- Entry numbers run 1, 2, 3... with no gap per journal and fiscal year (LPF art. A47 A-1: the
-- FEC's EcritureNum is a continuous sequence), and one number is one entry (one date, one
-- source). Returns the journals and years that break either rule. A daily build reads the
-- entries numbered after those the last build checked, which must go on from its last number
-- (macros/entries_checked.sql; accounting_entries_checked_unchanged proves the rest unchanged).
{%- set checked = entries_checked() %}
with entries as (
    select
        journal_code,
        extract(year from entry_date) as fiscal_year,
        entry_number,
        count(distinct {{ dbt.concat(["source_type", "'/'", "source_id"]) }}) as sources
    from ({{ entries_since_checked(checked) }}) as since
    group by journal_code, extract(year from entry_date), entry_number
),

checked as ({{ entries_checked_numbers(checked) }})

select e.journal_code, e.fiscal_year, min(e.entry_number) as first_number, max(e.entry_number) as last_number,
    count(*) as entries, max(e.sources) as most_sources_on_one_number, c.last_number as last_checked
from entries as e
left join checked as c on c.journal_code = e.journal_code and c.fiscal_year = e.fiscal_year
group by e.journal_code, e.fiscal_year, c.last_number
having min(e.entry_number) <> coalesce(c.last_number, 0) + 1
    or max(e.entry_number) - coalesce(c.last_number, 0) <> count(*)
    or max(e.sources) > 1
