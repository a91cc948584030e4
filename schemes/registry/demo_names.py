"""Names for the synthetic demo registry: East-African (mostly Tanzanian, some Kenyan and Ugandan)
given names and family names. Lists are ordered roughly from most to least common; the generator
weights them by rank so that some names repeat often, as in a real registry."""

FEMALE_FIRST_NAMES = (
    "Amina", "Neema", "Rehema", "Mwanaisha", "Zainabu", "Halima", "Fatuma", "Asha", "Mariamu",
    "Grace", "Joyce", "Esther", "Upendo", "Mwajuma", "Saida", "Anna", "Agnes", "Rose", "Happiness",
    "Faraja", "Furaha", "Imani", "Subira", "Tumaini", "Zawadi", "Winfrida", "Veronica", "Modesta",
    "Scholastica", "Theresia", "Magdalena", "Elizabeth", "Christina", "Janeth", "Jesca", "Lucy",
    "Mercy", "Faith", "Salma", "Salome", "Sarah", "Ruth", "Rebeka", "Debora", "Naomi", "Miriam",
    "Hadija", "Mwanahawa", "Mwanamisi", "Mwanaidi", "Mwantumu", "Mwamvita", "Tatu", "Mwasiti",
    "Sharifa", "Shani", "Pili", "Zuhura", "Zuwena", "Rukia", "Rahma", "Riziki", "Hawa", "Husna",
    "Jamila", "Khadija", "Latifa", "Maua", "Mwanahamisi", "Nasra", "Nuru", "Safina", "Sabra",
    "Sikudhani", "Siti", "Sophia", "Stella", "Editha", "Evaline", "Getrude", "Glory", "Gladness",
    "Irene", "Jackline", "Judith", "Juliana", "Leah", "Lilian", "Loveness", "Martha", "Mary",
    "Monica", "Nancy", "Nasimiyu", "Nafula", "Naliaka", "Wanjiru", "Wambui", "Njeri", "Nyambura",
    "Wanjiku", "Akinyi", "Achieng", "Adhiambo", "Atieno", "Awino", "Auma", "Anyango", "Nakato",
    "Nabirye", "Namono", "Babirye", "Kemirembe", "Kyomuhendo", "Nyokabi", "Chausiku", "Mwanne",
    "Mwanajuma", "Nyamizi", "Kabula", "Pendo", "Penina", "Prisca", "Regina", "Restituta", "Sabina",
    "Scola", "Selina", "Sesilia", "Specioza", "Sylvia", "Tabitha", "Tecla", "Violeth", "Yusta",
    "Zaituni", "Zaina", "Mwanahija", "Bahati", "Dainess", "Devota", "Dorcas", "Emiliana", "Flora",
    "Gaudensia", "Hilda", "Honorata", "Consolata", "Anastazia",
)

MALE_FIRST_NAMES = (
    "Juma", "Hamisi", "Rajabu", "Ramadhani", "Shabani", "Athumani", "Hassani", "Hussein", "Said",
    "Salum", "Omari", "Ally", "Abdallah", "Mohamedi", "Mussa", "Issa", "Yusuph", "Ibrahimu", "Idrisa",
    "Iddi", "Bakari", "Selemani", "Khamis", "Mbaraka", "Mwinyi", "Makame", "Haji", "Seif", "Kassim",
    "Rashidi", "Amani", "Baraka", "Emmanuel", "Joseph", "John", "Peter", "Paulo", "Petro", "Daudi",
    "Yohana", "Yakobo", "Elias", "Erasto", "Ezekiel", "Festo", "Frank", "Fredrick", "Gabriel",
    "George", "Godfrey", "Godlisten", "Goodluck", "Gerald", "Hamza", "Ismail", "Isaya", "Jackson",
    "James", "Januari", "Jonas", "Julius", "Justine", "Kelvin", "Lameck", "Lazaro", "Leonard",
    "Lucas", "Majaliwa", "Marko", "Martin", "Mathias", "Michael", "Nassoro", "Nuhu", "Obadia",
    "Onesmo", "Patrick", "Philipo", "Raphael", "Richard", "Robert", "Samweli", "Simon", "Stephano",
    "Thomas", "Tito", "Wilson", "Zakaria", "Zuberi", "Masudi", "Mrisho", "Kamau", "Kariuki",
    "Mwangi", "Njoroge", "Otieno", "Ochieng", "Odhiambo", "Omondi", "Onyango", "Owino", "Okello",
    "Mugisha", "Kato", "Wasswa", "Kiprono", "Kibet", "Mwita", "Marwa", "Chacha", "Magesa",
    "Masanja", "Shija", "Mashaka", "Matayo", "Deogratias", "Dismas", "Evarist", "Fabian",
    "Faustine", "Felix", "Gasper", "Hilary", "Innocent", "Jeremiah", "Liberatus", "Linus", "Modest",
    "Nestory", "Prosper", "Renatus", "Silvester", "Theodory", "Valentine", "Venance", "Wilbard",
    "Yahaya", "Abeid", "Ahmed", "Bilali", "Chande", "Hemedi", "Jabiri", "Kheri", "Maulidi",
    "Mbwana", "Mustafa", "Nasibu", "Saleh", "Sefu", "Twaha", "Ussi", "Zahoro", "Doto", "Kulwa",
)

FAMILY_NAMES = (
    "Mwakyusa", "Massawe", "Kimaro", "Mushi", "Mrema", "Lyimo", "Swai", "Juma", "Hamisi",
    "Mwakalinga", "Mwansasu", "Mwaipopo", "Mwakasege", "Mwamba", "Mwanga", "Temba", "Shirima",
    "Minja", "Moshi", "Mollel", "Laizer", "Lukumay", "Kisanga", "Komba", "Ndunguru", "Nchimbi",
    "Mbunda", "Haule", "Mapunda", "Mbawala", "Kapinga", "Njovu", "Ngonyani", "Hyera", "Mhagama",
    "Luoga", "Chaula", "Mwinuka", "Kihwele", "Sanga", "Mlowe", "Mligo", "Nyoni", "Mhando",
    "Shemdoe", "Msuya", "Makundi", "Mlay", "Tarimo", "Urassa", "Mmari", "Kessy", "Macha", "Mallya",
    "Shayo", "Ngowi", "Kavishe", "Marealle", "Lema", "Nnko", "Mbise", "Pallangyo", "Akyoo", "Kaaya",
    "Sumari", "Mbwambo", "Mziray", "Shekifu", "Magesa", "Marwa", "Chacha", "Mwita", "Nyamhanga",
    "Wambura", "Magige", "Masanja", "Shija", "Maganga", "Luhende", "Lyamuya", "Bulugu", "Kashindye",
    "Mashauri", "Kalinga", "Lugendo", "Mwakibete", "Mwaisela", "Kyando", "Mahenge", "Kamau",
    "Mwangi", "Njoroge", "Kariuki", "Wanjala", "Wafula", "Barasa", "Simiyu", "Wekesa", "Otieno",
    "Ochieng", "Odhiambo", "Omondi", "Onyango", "Owino", "Okoth", "Kiprotich", "Kiprono",
    "Cheruiyot", "Rotich", "Langat", "Koech", "Mutua", "Musyoka", "Kioko", "Mutiso", "Nzioka",
    "Mugisha", "Tumusiime", "Byaruhanga", "Ssemakula", "Ssempijja", "Mukasa", "Kato", "Nsubuga",
    "Lubega", "Kiggundu", "Okello", "Opio", "Ocen", "Ojok", "Bakari", "Salim", "Omari", "Mohamedi",
    "Abdallah", "Said", "Athumani", "Rashidi", "Kombo", "Makame", "Mussa", "Khamis", "Haji", "Seif",
    "Mfinanga", "Kileo", "Ndosi", "Mosha", "Kweka", "Munisi", "Ulomi", "Matemu",
)
