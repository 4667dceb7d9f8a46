-- Every entry balances (double entry): the rows returned are the entries whose
-- debits and credits differ. An entry is a journal, a fiscal year and a number. A daily build
-- reads the entries numbered after those the last build checked (macros/entries_checked.sql).
select
    journal_code,
    extract(year from entry_date) as fiscal_year,
    entry_number,
    sum(debit) as total_debit,
    sum(credit) as total_credit
from ({{ entries_since_checked(entries_checked()) }}) as since
group by journal_code, extract(year from entry_date), entry_number
having sum(debit) <> sum(credit)
