"""Word lists the synthetic mailbox is made of: people, counterparties, places, codenames, filler phrases.

Data only, kept apart from the generator so the generator reads as logic. The lists are sized so that a
question's keywords (a codename and a counterparty) are rare across a 500,000-email mailbox while the
filler shares the everyday business words (meeting, price, deal, call) that make naive searches noisy.
"""

from __future__ import annotations

FIRST_NAMES = """
James John Robert Michael William David Richard Joseph Thomas Charles Christopher Daniel Matthew Anthony
Mark Donald Steven Paul Andrew Joshua Kenneth Kevin Brian George Timothy Ronald Edward Jason Jeffrey Ryan
Jacob Gary Nicholas Eric Jonathan Stephen Larry Justin Scott Brandon Benjamin Samuel Gregory Frank
Alexander Raymond Patrick Jack Dennis Jerry Tyler Aaron Jose Adam Henry Nathan Douglas Zachary Peter Kyle
Walter Ethan Jeremy Harold Keith Christian Roger Noah Gerald Carl Terry Sean Austin Arthur Lawrence Jesse
Dylan Bryan Joe Jordan Billy Bruce Albert Willie Gabriel Logan Alan Juan Wayne Roy Ralph Randy Eugene
Vincent Russell Louis Philip Bobby Johnny Bradley Mary Patricia Jennifer Linda Elizabeth Barbara Susan
Jessica Sarah Karen Nancy Lisa Betty Margaret Sandra Ashley Kimberly Emily Donna Michelle Dorothy Carol
Amanda Melissa Deborah Stephanie Rebecca Sharon Laura Cynthia Kathleen Amy Shirley Angela Helen Anna
Brenda Pamela Nicole Emma Samantha Katherine Christine Debra Rachel Catherine Carolyn Janet Ruth Maria
Heather Diane Virginia Julie Joyce Victoria Olivia Kelly Christina Lauren Joan Evelyn Judith Megan
Cheryl Andrea Hannah Martha Jacqueline Frances Gloria Ann Teresa Kathryn Sara Janice Jean Alice Madison
Doris Abigail Julia Judy Grace Denise Amber Marilyn Beverly Danielle Theresa Sophia Marie Diana Brittany
Natalie Isabella Charlotte Rose Alexis Kayla Vince Sally Louise Tana Kay Shelley Jeff Kim Drew Holly
""".split()

LAST_NAMES = """
Smith Johnson Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez Wilson
Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis
Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall
Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker Cruz Edwards Collins
Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper Peterson Bailey Reed Kelly
Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes
Alvarez Castillo Sanders Patel Myers Ross Foster Jimenez Powell Jenkins Perry Russell Sullivan
Bell Coleman Butler Henderson Barnes Gonzales Fisher Vasquez Simmons Romero Jordan Patterson Alexander
Hamilton Graham Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera Gibson Ellis Tran Medina
Aguilar Stevens Murray Ford Castro Marshall Harrison Fernandez McDonald Woods Washington Kennedy
Wells Vargas Henry Chen Freeman Webb Tucker Guzman Burns Crawford Olson Simpson Porter Hunter Gordon
Mendez Silva Shaw Snyder Mason Dixon Munoz Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd Rose
Stone Salazar Fox Warren Mills Meyer Rice Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver
Ryan Gardner Payne Grant Dunn Kelley Spencer Hawkins Arnold Pierce Vazquez Hansen Peters Santos Hart
Knight Elliott Cunningham Duncan Armstrong Hudson Carroll Lane Riley Andrews Alvarado Ray Delgado
Berry Perkins Hoffman Johnston Matthews Pena Richards Willis Carpenter Lawrence Sandoval Guerrero
Chapman Rios Estrada Ortega Watkins Greene Nunez Wheeler Valdez Harper Burke Larson Santiago Maldonado
Morrison Franklin Carlson Austin Dominguez Carr Lawson Jacobs Obrien Lynch Singh Vega Bishop Montgomery
Oliver Jensen Harvey Williamson Gilbert Dean Sims Espinoza Howell Li Wong Reid Hanson Le McCoy Garrett
Burton Fuller Wang Weber Welch Rojas Lucas Marquez Fields Park Yang Little Banks Padilla Walsh Bowman
Schultz Luna Fowler Mejia Davidson Acosta Brewer Holland Juarez Newman Pearson Curtis Cortez Douglas
Schneider Joseph Barrett Navarro Figueroa Keller Avila Wade Molina Stanley Hopkins Campos Barnett Bates
Chambers Caldwell Beck Lambert Miranda Byrd Craig Ayala Lowe Frazier Powers Neal Leonard Gregory Carrillo
Sutton Fleming Rhodes Shelton Schwartz Norris Jennings Watts Duran Walters Cohen McDaniel Moran Parks
Steele Vaughn Becker Holt Deleon Barker Terry Hale Leon Hail Benson Haynes Horton Miles Lyons Pham Graves
Bush Thornton Wolfe Warner Cabrera McKinney Mann Zimmerman Dawson Lara Fletcher McCarthy
Kaminski Lay Skilling Fastow Kitchen Lavorato Shankman Dasovich Steffes Kean Shapiro Sager Haedicke
""".split()

# Counterparties: (name used in text and questions, email domain). One-word names keep them single FTS
# tokens, so a question's keywords are exactly the words an agent would type.
COMPANIES = [
    ("Dynegy", "dynegy.com"), ("Reliant", "reliant.com"), ("Calpine", "calpine.com"),
    ("Mirant", "mirant.com"), ("Aquila", "aquila.com"), ("Sempra", "sempra.com"),
    ("Williams", "williams.com"), ("Duke", "duke-energy.com"), ("Tenaska", "tenaska.com"),
    ("Cinergy", "cinergy.com"), ("Constellation", "constellation.com"), ("Entergy", "entergy.com"),
    ("Exelon", "exeloncorp.com"), ("Tractebel", "tractebel.com"), ("Utilicorp", "utilicorp.com"),
    ("Avista", "avistaenergy.com"), ("Idacorp", "idacorpenergy.com"), ("Conoco", "conoco.com"),
    ("Koch", "kochind.com"), ("Texaco", "texaco.com"), ("Chevron", "chevron.com"),
    ("Occidental", "oxy.com"), ("Petrobras", "petrobras.com.br"), ("Kinder", "kindermorgan.com"),
    ("Transco", "williams.com"), ("Allegheny", "alleghenyenergy.com"), ("Coral", "coral-energy.com"),
    ("Southern", "southernco.com"), ("Westcoast", "westcoastenergy.com"), ("Engage", "engageenergy.com"),
    ("Sithe", "sithe.com"), ("Pinnacle", "pinnaclewest.com"), ("Vitol", "vitol.com"),
    ("Glencore", "glencore.com"), ("Cargill", "cargill.com"), ("Merrill", "ml.com"),
    ("Citibank", "citi.com"), ("Chase", "chase.com"), ("Barclays", "barclayscapital.com"),
    ("Deloitte", "dc.com"), ("Andersen", "andersen.com"), ("Vinson", "velaw.com"),
    ("Bracewell", "bracepatt.com"), ("Accenture", "accenture.com"), ("Halliburton", "halliburton.com"),
    ("Schlumberger", "slb.com"), ("Weyerhaeuser", "weyerhaeuser.com"), ("Alcoa", "alcoa.com"),
    ("Noranda", "noranda.com"), ("Owens", "owenscorning.com"), ("Rhodia", "rhodia.com"),
    ("Dominion", "dom.com"), ("Peoples", "peoplesenergy.com"), ("Nicor", "nicor.com"),
    ("Questar", "questar.com"), ("Panhandle", "cmsenergy.com"), ("Tejas", "tejas.com"),
    ("Cabot", "cabotog.com"), ("Devon", "dvn.com"), ("Anadarko", "anadarko.com"),
]

# Internal project codenames; Enron really named deals after birds, stars and film characters.
CODENAMES = """
Raptor Condor Falcon Osprey Merlin Kestrel Harrier Peregrine Heron Egret Pelican Albatross Cormorant
Kingfisher Sparrow Swallow Starling Warbler Oriole Tanager Bunting Finch Grosbeak Plover Sandpiper
Curlew Avocet Stilt Ibis Crane Stork Flamingo Gannet Petrel Puffin Tern Skimmer Jaeger Kittiwake Loon
Grebe Bittern Rail Gallinule Coot Whimbrel Godwit Dunlin Sanderling Turnstone Phalarope Nighthawk
Whippoorwill Swift Hummingbird Trogon Motmot Toucan Woodpecker Flicker Sapsucker Kingbird Phoebe Pewee
Vireo Jay Magpie Raven Chickadee Titmouse Nuthatch Creeper Wren Kinglet Gnatcatcher Bluebird Thrush
Veery Mockingbird Thrasher Pipit Waxwing Shrike Junco Towhee Dickcissel Bobolink Meadowlark Cowbird
Sirius Canopus Arcturus Capella Rigel Procyon Achernar Betelgeuse Hadar Altair Acrux Aldebaran
Antares Spica Pollux Fomalhaut Deneb Mimosa Regulus Adhara Castor Shaula Bellatrix Elnath Miaplacidus
Alnilam Alnair Alnitak Alioth Dubhe Mirfak Wezen Sargas Kaus Avior Alkaid Menkalinan Atria Alhena
Peacock Alsephina Mirzam Alphard Polaris Hamal Algieba Diphda Nunki Menkent Mirach Alpheratz Rasalhague
Kochab Saiph Denebola Algol Tiaki Muhlifain Aspidiske Suhail Alphecca Mintaka Sadr Eltanin Schedar
Naos Almach Caph Izar Dschubba Larawag Merak Ankaa Girtab Enif Scheat Sabik Phecda Aludra Markeb
Navi Markab Aljanah Acrab Jedi Chewco Whitewing Braveheart Yosemite Sundance Marlin Azurite
Bobcat Mariner Ponderosa Firefly Timberwolf Backbone Hawaii Margaux Bacchus Cuiaba Porcupine
Mojave Sonoran Chihuahua Gobi Kalahari Atacama Namib Sahara Patagonia Tundra Taiga Savanna Steppe
Aspen Birch Cedar Cypress Hemlock Juniper Larch Magnolia Mesquite Sequoia Spruce Sycamore Tamarack
Tupelo Willow Yucca Saguaro Ocotillo Agave Manzanita Madrone Buckeye Catalpa Hickory Pecan Sassafras
Bluebonnet Columbine Larkspur Lupine Primrose Trillium Yarrow Zinnia Dahlia Peony Azalea Camellia
""".split()

CITIES = """
Houston Portland Omaha Calgary London Chicago Denver Dallas Austin Sacramento Phoenix Atlanta Boston
Seattle Tulsa Oslo Toronto Washington Charlotte Pittsburgh Cincinnati Minneapolis Albuquerque Boise
Spokane Reno Midland Tucson Orlando Columbus Detroit Louisville Memphis Nashville Richmond Baltimore
Philadelphia Newark Hartford Buffalo Stamford Singapore Tokyo Sydney Frankfurt Madrid Milan
""".split()

HOTELS = [
    "Hyatt Regency", "Four Seasons", "Westin Galleria", "Doubletree", "Marriott Marquis", "Hilton Americas",
    "Omni", "Renaissance", "Sheraton", "Crowne Plaza", "Embassy Suites", "Ritz-Carlton", "Adam's Mark",
    "Warwick", "St. Regis", "Benson", "Fairmont", "Le Meridien", "Wyndham", "Radisson",
]

RESTAURANTS = [
    "Pappas Bros. Steakhouse", "Ruth's Chris", "Morton's", "Vic & Anthony's", "Brennan's", "Tony's",
    "Damian's", "Cafe Annie", "Mark's", "Nino's", "Irma's", "Ninfa's", "Goode Company", "Otto's",
    "Treebeards", "La Griglia", "Carrabba's", "Churrascos", "Americas", "Benjy's", "Capital Grille",
    "Perry's", "Del Frisco's", "Smith & Wollensky", "Fleming's", "Landry's", "Pappadeaux", "Chez Nous",
]

ROOMS = [f"EB {floor}{wing}{n}" for floor in (8, 19, 27, 30, 32, 38, 47, 49, 50) for wing in "CO" for n in (1, 2, 3, 4)]

AIRLINES = ["Continental", "Southwest", "American", "Delta", "United", "Northwest", "America West"]

GAS_POINTS = [
    "Henry Hub", "Waha", "Katy", "Carthage", "Chicago Citygate", "SoCal Border", "Opal", "Sumas", "Malin",
    "Transco Zone 6", "Tetco M3", "Dominion South", "NGPL Midcon", "Houston Ship Channel", "El Paso Permian",
]
POWER_POINTS = ["Palo Verde", "Mid-C", "COB", "PJM West", "Into ComEd", "NEPOOL", "ERCOT North", "NP15", "SP15", "Into TVA"]

# A deal is in gas or power; the units follow the commodity.
COMMODITIES = {
    "gas": {"commodity": "gas", "price_unit": "MMBtu", "volume_unit": "MMBtu/day", "points": GAS_POINTS},
    "power": {"commodity": "power", "price_unit": "MWh", "volume_unit": "MW", "points": POWER_POINTS},
}

GREETINGS = ["{to_first},", "Hi {to_first},", "{to_first} -", "Hello {to_first},", "", "All,"]
SIGNOFFS = ["Thanks,", "Regards,", "Thanks!", "Best,", "", "-", "Talk soon,"]
ACKS = [
    "Got it, thanks.", "Thanks - I'll put it on the calendar.", "Sounds good.", "Perfect, thank you.",
    "Thanks for the update.", "OK. Let me know if anything else changes.", "Will do.", "Noted, thanks.",
    "Great - that works for me.", "Thanks. I'll pass this along to the group.",
]
FORWARD_NOTES = ["FYI", "Please see below.", "See below - can you handle?", "FYI - for your files.", "fyi"]

# Sentences that pad a business email without stating any fact a question asks about.
BUSINESS_SENTENCES = [
    "Let me know if you have any questions.", "I'll circulate a draft once legal has signed off.",
    "We still need credit to approve the counterparty.", "Please keep this confidential for now.",
    "I'm out of the office Friday but reachable on my cell.", "Can you make sure the risk group sees this?",
    "We should have the term sheet back from {company} early next week.",
    "{colleague_first} is pulling together the numbers.", "I've copied {colleague_first} so we're all on the same page.",
    "Talked to {contact_first} this morning and they seem comfortable.", "The confirm should go out today.",
    "Let's try to wrap this up before the end of the month.", "Give me a call if you want to walk through it.",
    "Legal wants one more pass at the master agreement.", "I told {contact_first} we'd get back to them by Wednesday.",
    "The book is getting pretty long here, so let's keep an eye on it.", "Accounting asked for backup on this one.",
]

NEWS_SUBJECTS = [
    "Enron Mentions", "Gas Daily Headlines", "EnronOnline Report", "Power Markets Update", "Energy News Live",
    "Daily Market Summary", "Industry Headlines", "Regulatory Update", "West Power Report", "NYMEX Close",
]
NEWS_SENTENCES = [
    "{company} said it would expand its trading operations in {city} by the end of the year.",
    "Natural gas futures settled at ${price} on the NYMEX as cooler weather moved into the {region}.",
    "{company} reported quarterly earnings of ${eps} per share, beating analyst estimates.",
    "Regulators in {city} opened an inquiry into wholesale prices after a week of volatile trading.",
    "Spot power at {power_point} traded as high as ${power_price} per MWh during the afternoon peak.",
    "Cash gas at {gas_point} was quoted at ${price}, up {cents} cents from the previous session.",
    "{company} and {company2} announced a long-term supply agreement covering {volume} MMBtu/day.",
    "Analysts expect storage injections of {storage} Bcf when the EIA reports on Thursday.",
    "The California ISO declared a Stage {stage} emergency as reserves fell below {reserve} percent.",
    "{company} named a new chief executive to lead its merchant energy business.",
    "Shares of {company} fell {cents} cents in heavy trading after a credit downgrade.",
    "EnronOnline transactions reached {txns} on the day with total notional value of ${notional} million.",
    "Pipeline maintenance on the {region} system is expected to cut capacity through the weekend.",
    "{company} filed comments with FERC opposing the proposed price caps in the {region}.",
]
REGIONS = ["Northeast", "Midwest", "Southeast", "Gulf Coast", "Rockies", "Pacific Northwest", "Southwest", "West"]

CHAT_SUBJECTS = [
    "lunch?", "Friday", "Astros tickets", "fantasy football", "happy hour", "birthday", "this weekend",
    "golf", "running late", "Re: dinner", "quick question", "the game", "vacation", "parking", "Rockets",
]
CHAT_SENTENCES = [
    "Want to grab lunch at {restaurant} around {time}?", "Are you going to happy hour at {restaurant} tonight?",
    "I have two extra tickets for the Astros game on {weekday} if you want them.",
    "My flight back from {city} got delayed so I won't be in until {time}.",
    "Don't forget {name}'s birthday cake in the break room at {time}.", "Did you see the game last night?",
    "We're thinking about {city} for vacation this summer, have you been?",
    "I'm starting a fantasy football league - {count} teams so far, you in?",
    "Can you cover for me at the {time} staff meeting? I have a doctor's appointment.",
    "Tee time is {time} on {weekday}, meet at the clubhouse.", "Thanks again for dinner at {restaurant}.",
    "Parking garage is closed {weekday} so plan accordingly.", "How was {city}? Hope the weather cooperated.",
]

ADMIN_SENDERS = [
    "enron.announcements@enron.com", "it.helpdesk@enron.com", "hr.benefits@enron.com",
    "expense.reports@enron.com", "building.services@enron.com", "enron.payroll@enron.com",
]
ADMIN_MESSAGES = [
    ("Outlook migration", "Your mailbox will be migrated to Outlook on {weekday}. Please log off by {time} and leave your PC on."),
    ("Expense report approved", "Your expense report for {city} totaling ${amount} has been approved and will be paid in the next cycle."),
    ("Timesheet reminder", "Timesheets for this period are due {weekday} by {time}. Late submissions delay payroll."),
    ("Building notice", "The {floor}th floor will be closed for renovation starting {weekday}. Please use the {floor2}th floor conference rooms."),
    ("Benefits enrollment", "Open enrollment ends {weekday}. Employees who do not elect coverage will keep last year's plan."),
    ("Password expiration", "Your network password expires in {count} days. Press Ctrl-Alt-Delete and choose Change Password."),
    ("United Way campaign", "Our United Way campaign has raised ${amount} so far. Pledge cards are due {weekday}."),
    ("Fire drill", "A fire drill is scheduled for {weekday} at {time}. Please exit by the nearest stairwell."),
    ("Training: EnronOnline", "A training session on the new EnronOnline features is set for {weekday} at {time} in {room}."),
]

TRADING_SUBJECTS = ["positions", "curves", "basis", "EOL", "book", "P&L", "nominations", "schedule", "deal entry", "RE: prices"]
TRADING_SENTENCES = [
    "Can you send me the {gas_point} position for {month}?",
    "{company} bid ${price} for {month} at {gas_point} this morning.",
    "Curves are updated for {power_point}; let me know if the {month} number looks off.",
    "We need to get the {company} nominations in by {time}.",
    "P&L for the day was ${amount}, mostly from {gas_point}.",
    "{company} is asking about a deal at {gas_point} for {month} - can you price it?",
    "The meeting to go over the {month} book is at {time} in {room}.",
    "I'll need the deal numbers for everything we did with {company} last week.",
    "Volumes at {gas_point} came in {count} percent under schedule.",
    "Please check the price on the {company} deal - it shows ${price} in the system.",
    "{name} wants the {month} deals with {company} reconciled before the call.",
    "The {power_point} desk is short {count} MW for tomorrow's peak.",
]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
NEWS_SENDERS = [
    "enron.mentions@enron.com", "gasdaily@platts.com", "newsletter@energycentral.com", "eol.report@enron.com",
    "news@ftenergy.com", "alerts@powermarketers.com",
]
