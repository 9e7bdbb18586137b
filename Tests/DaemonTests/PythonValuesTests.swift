import Control
import Testing

@testable import Daemon

/// Arguments read as fail2ban-server reads them, with its replies for bad ones.
@Suite struct PythonValuesTests {
    @Test("int(): Python's literals and its error text; beyond a billion refused")
    func integers() throws {
        #expect(try PythonValues.int(" 42 ").get() == 42)
        #expect(try PythonValues.int("-1").get() == -1)
        #expect(try PythonValues.int("1_000").get() == 1000)
        #expect(
            PythonValues.int("abc")
                == .failure(ControlError(.invalidArgument, "invalid literal for int() with base 10: 'abc'")))
        #expect(
            PythonValues.int("1.5")
                == .failure(ControlError(.invalidArgument, "invalid literal for int() with base 10: '1.5'")))
        #expect((try? PythonValues.int("99999999999999999999").get()) == nil)
    }

    @Test("str2seconds: ints unless a fraction or months/years; NameError for a bare word")
    func seconds() throws {
        #expect(try PythonValues.seconds("600").get().value == .int(600))
        #expect(try PythonValues.seconds("1h").get().value == .int(3600))
        #expect(try PythonValues.seconds("1.5m").get().value == .double(90))
        #expect(try PythonValues.seconds("1mo").get().value == .double(2_629_800))
        #expect(try PythonValues.seconds("2 days").get().value == .int(172_800))
        #expect(try PythonValues.wholeSeconds("1.5h").get().value == .int(5400))
        guard case .failure(let e) = PythonValues.seconds("abc") else {
            Issue.record("abc is not a time")
            return
        }
        #expect(e == ControlError(.nameError, "name 'abc' is not defined"))
        #expect((try? PythonValues.seconds("1e999").get()) == nil)
    }

    @Test("_as_bool")
    func bools() {
        #expect(
            PythonValues.bool("True") && PythonValues.bool("on") && PythonValues.bool("1") && PythonValues.bool("yes"))
        #expect(!PythonValues.bool("false") && !PythonValues.bool("maybe"))
    }
}
