"""Given-name equivalence groups: 'Bob' and 'Robert' are the same person's name, 'Bob' and 'Rob' too.

Edit distance cannot see these (Bob/Robert share one letter), yet nicknames are among the most
common reasons two records of one customer disagree on the first name. The table is hand-made
from common English given names and their diminutives; a name may sit in several groups
('Chris' is Christopher, Christine and Christian), so matching asks whether two names share
*any* group, while `canonical_given_name` gives one stable key for blocking and display.
"""

from __future__ import annotations

from functools import lru_cache

from rapidfuzz import process
from rapidfuzz.distance import OSA

# One group per line: canonical full name first, then spellings and diminutives.
_GROUPS_TEXT = """
aaron ron ronnie
abigail abby abbie gail
abraham abe abram
adam ade
adelaide addie adele della heidi
adrian ade
agatha aggie
agnes aggie nessa
albert al bert bertie albie
alexander alex al alec alexis sandy xander lex alasdair alastair alistair
alexandra alex alexa lexi sandra sandy sasha ali
alfred al alf alfie fred freddie
alice allie ally alicia alison allison elsie
allen al allan alan
amanda mandy manda
amelia amy millie mel emily
andrew andy drew andre
angela angie angel
anthony tony ant antony anton
antoinette toni netta
ann anne anna annie nan nancy nannie hannah anita
arnold arnie
arthur art artie
augustus gus august augustine
barbara barb barbie babs bobbie
bartholomew bart
beatrice bea trixie beatrix
benedict ben benny
benjamin ben benny benji jamie
bernard bernie barney
beverly bev
bradley brad
brenda bren
bridget biddy bridie brigid
calvin cal
cameron cam
caroline carol carrie carolyn lina callie
charles charlie chuck chas chaz carl chip
charlotte charlie lottie lotte carlotta
christian chris christy
christina chris chrissy tina christine kristina kristine kris
christopher chris kit topher cris kris
clarence clare
clifford cliff
constance connie
cornelius neil connie
cynthia cindy
daniel dan danny
darrell darryl daryl
david dave davey davy
deborah deb debbie debra debby
delores dee lola dolores
dennis denny
diana diane di dianna
dominic dom nick
donald don donny donnie
dorothy dot dottie dolly dora
douglas doug
earnest ernie ernest
edgar ed eddie ned
edmund ed eddie ned ted
edward ed eddie ted teddy ned ward
edwin ed eddie ned win
eleanor ellie nora elle nell nellie elinor
elizabeth liz lizzie beth betty bess bessie eliza lisa libby betsy liza lizbeth elisabeth ellie elsie
ellen nell nellie ellie helen
emily em emmy millie
emma em emmy
eric rick ricky erik
eugene gene
evelyn evie eve
florence flo flossie
frances fran frannie fanny francine
francis frank frankie fran
franklin frank frankie
frederick fred freddie freddy fritz rick
gabriel gabe gabby
gabrielle gabby gabi brie
genevieve gen jenny
geoffrey geoff jeff
george georgie
gerald gerry jerry
geraldine gerry geri dina
gertrude gertie trudy
gilbert gil bert
gloria glory
gordon gordy
gregory greg
gwendolyn gwen wendy
harold hal harry
harriet hattie hatty
harrison harry
henry hank harry hal
herbert herb bert
howard howie
isaac ike
isabella bella izzy isabel isabelle belle
isadore izzy
jacob jake jack coby
jacqueline jackie jacquie
james jim jimmy jamie jimbo jem
jane janie jenny jennie jean janet jan
jeffrey jeff
jennifer jen jenny jenn jennie
jeremiah jerry
jeremy jerry jem
jerome jerry
jessica jess jessie
joanna jo joanne joann jody
john jack johnny jon jonny
jonathan jon jonny nathan
joseph joe joey jo
josephine jo josie jody
joshua josh
judith judy jude
julia julie jules
julian jules
katherine kate kathy katie kat kathryn catherine cathy cath kay kit kitty katharine kathleen cate katy trina
kenneth ken kenny
kimberly kim kimberley
lauren laurie
laurence larry laurie lawrence lorenzo
leonard leo len lenny leon
leslie les
lillian lily lil lilly
linda lindy lynn
louis lou louie lewis
louise lou lulu louisa
lucinda cindy lucy
lucille lucy lu
madeline maddie maddy madeleine lena
margaret maggie peggy meg megan marge margie greta gretchen daisy madge maisie rita margo margot meta
marjorie marge margie
martha marty mattie patty
martin marty
mary molly polly mae mamie mimi maria marie may mollie
matilda tilly matty maud
matthew matt matty
maureen mo
maximilian max
maxwell max
melissa mel missy lisa
michael mike mikey mick mickey micky mitch
michelle shelly michele
mildred millie milly
mitchell mitch
montgomery monty
nathaniel nat nate nathan
nathan nat nate
nicholas nick nicky nico claus
nicole nicky nikki
norman norm
oliver ollie
olivia liv livvy ollie
oswald ozzy oz
patricia pat patty tricia trish patsy
patrick pat paddy rick
pamela pam
penelope penny
peter pete
philip phil pip phillip
priscilla cilla prissy
rachel rae shelly
randolph randy
raymond ray
rebecca becky becca reba
reginald reggie reg
richard rich rick ricky dick richie dickie
robert bob bobby rob robbie bert rab
roberta bobbie robbie berta
rodney rod
roger rodge
ronald ron ronnie
rosalind roz rosa
rose rosie rosa
rosemary rosie rose
rudolph rudy rudi
russell russ rusty
samantha sam sammy
samuel sam sammy
sandra sandy
sarah sally sadie sara
sebastian seb bastian
sidney sid
solomon sol
sophia sophie
stanley stan
stephanie steph stevie
stephen steve stevie steven
stuart stu stewart
susan sue susie suzy susanna suzanne
sylvester sly vester
terence terry
teresa terry tess tessa tessie theresa tracy
theodore ted teddy theo
thomas tom tommy thom
timothy tim timmy
tobias toby
valentine val
valerie val
vernon vern
veronica ronnie nica vera
victor vic
victoria vicky tori vic vikki
vincent vince vinny
virginia ginny ginger
walter walt wally
wilfred will fred
wilhelmina mina willa minnie
william bill will billy willie liam willy wil
winifred winnie freda
zachary zach zack zac
"""


def _parse(text: str) -> dict[str, tuple[str, ...]]:
    """Name -> keys of every group it belongs to, in table order (first group wins for display)."""
    groups: dict[str, list[str]] = {}
    for line in text.strip().splitlines():
        names = line.split()
        key = names[0]
        for name in names:
            keys = groups.setdefault(name, [])
            if key not in keys:
                keys.append(key)
    return {name: tuple(keys) for name, keys in groups.items()}


NICKNAME_GROUPS: dict[str, tuple[str, ...]] = _parse(_GROUPS_TEXT)
# Group keys numbered once so that vectorized comparison can work on small integers.
GROUP_IDS: dict[str, int] = {
    key: index
    for index, key in enumerate(dict.fromkeys(k for keys in NICKNAME_GROUPS.values() for k in keys))
}


#: Shortest unknown name looked up within one edit of the table: shorter names are a letter apart
#: from too many others ('ann'/'dan') for an edit to say which was meant.
MISTYPED_NAME_MIN_LENGTH = 5


#: The table's names that a typo may be looked up against (`nickname_groups_forgiving_typo`).
_LONG_NAMES: list[str] = [name for name in NICKNAME_GROUPS if len(name) >= MISTYPED_NAME_MIN_LENGTH - 1]


def _lookup_key(name: str) -> str:
    """Lower-case first token: 'Mary Ann' is looked up as 'mary', 'J.' never matches a group."""
    parts = name.strip().lower().replace("-", " ").split()
    return parts[0] if parts else ""


@lru_cache(maxsize=65536)
def nickname_groups(name: str | None) -> tuple[str, ...]:
    """Keys of every group the name belongs to; empty when the name is not in the table."""
    if not name:
        return ()
    return NICKNAME_GROUPS.get(_lookup_key(name), ())


@lru_cache(maxsize=65536)
def nickname_groups_forgiving_typo(name: str | None) -> tuple[str, ...]:
    """`nickname_groups`, or for a name not in the table the groups of every table name one edit
    (or transposition) from it: 'Anthnoy' is in Anthony's groups, so a typo in one record and a
    nickname in another ('Anthnoy'/'Tony') still read as one given name.

    Names shorter than `MISTYPED_NAME_MIN_LENGTH` are only looked up as they are.
    """
    groups = nickname_groups(name)
    if groups or not name:
        return groups
    key = _lookup_key(name)
    if len(key) < MISTYPED_NAME_MIN_LENGTH:
        return ()
    near = process.extract(key, _LONG_NAMES, scorer=OSA.distance, score_cutoff=1, limit=None)
    return tuple(dict.fromkeys(g for match, _, _ in near for g in NICKNAME_GROUPS[match]))


def canonical_given_name(name: str | None) -> str:
    """One lower-case key per given name, the first group's key, or the name itself if unknown.

    Ambiguous diminutives ('Chris') get their first group's key, so use `are_nicknames` (any
    shared group) rather than key equality when deciding whether two names agree.
    """
    if not name:
        return ""
    groups = nickname_groups(name)
    return groups[0] if groups else _lookup_key(name)


def are_nicknames(a: str | None, b: str | None) -> bool:
    """True when both names share at least one nickname group (exact equality not required)."""
    ga, gb = nickname_groups(a), nickname_groups(b)
    return bool(ga and gb and set(ga) & set(gb))
